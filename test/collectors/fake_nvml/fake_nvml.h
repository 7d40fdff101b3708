/* The fake libnvidia-ml's shared state, between fake_nvml.c (the scenario, identity, MIG and
 * events) and fake_nvml_counters.c (the counters users alert on and the processes). Not a public
 * header: the tests drive the fake through its exported fake_nvml_* functions. */
#ifndef DEVSCOPE_TEST_COLLECTORS_FAKE_NVML_FAKE_NVML_H_
#define DEVSCOPE_TEST_COLLECTORS_FAKE_NVML_FAKE_NVML_H_

#include <pthread.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include "collectors/nvml_api.h"

#define FAKE_EXPORT __attribute__((visibility("default")))
#define FAKE_MAX_SLOTS 64
#define FAKE_MAX_PROCESSES 16
#define FAKE_MAX_SAMPLES 64

enum {
  ATTR_UTIL_GPU,
  ATTR_UTIL_MEMORY,
  ATTR_MEM_TOTAL,
  ATTR_MEM_USED,
  ATTR_MEM_FREE,
  ATTR_TEMPERATURE,
  ATTR_POWER_MW,
  ATTR_ENERGY_MJ,
  ATTR_ECC_CORRECTED,
  ATTR_ECC_UNCORRECTED,
  ATTR_MINOR,
  ATTR_SERIAL_SET, /* unused value: the serial string is set with fake_nvml_set_serial */
  ATTR_CLOCK_SM,   /* MHz */
  ATTR_CLOCK_MEM,
  ATTR_MAX_CLOCK_SM,
  ATTR_MAX_CLOCK_MEM,
  ATTR_CLOCK_EVENTS, /* the current reason bits */
  ATTR_CLOCK_EVENTS_SUPPORTED,
  ATTR_UTIL_ENCODER,
  ATTR_UTIL_DECODER,
  ATTR_MEM_RESERVED,
  ATTR_MEM_TEMPERATURE, /* a field value (NVML_FI_DEV_MEMORY_TEMP) */
  ATTR_PCIE_REPLAYS,
  ATTR_PCIE_TX_KB,
  ATTR_PCIE_RX_KB,
  ATTR_RETIRED_SBE,
  ATTR_RETIRED_DBE,
  ATTR_RETIRED_PENDING,
  ATTR_REMAPPED_CORRECTABLE, /* the four remapped-row values: all set, or the call is unsupported */
  ATTR_REMAPPED_UNCORRECTABLE,
  ATTR_REMAP_PENDING,
  ATTR_REMAP_FAILED,
  ATTR_POWER_LIMIT_MW,
  ATTR_COMPUTE_PROCESSES,  /* only for fake_nvml_fail: the lists are always supported */
  ATTR_GRAPHICS_PROCESSES,
  ATTR_PROCESS_UTILIZATION, /* set (any value): per-process samples are supported */
  ATTR_COUNT
};

extern const char* const kFakeAttrNames[ATTR_COUNT];

/* NVLink counters of a link: nvmlNvLinkErrorCounter_t's five, then the field values' KiB. */
enum { NVLINK_TX_KIB = 5, NVLINK_RX_KIB = 6, NVLINK_COUNTERS = 7 };

struct nvmlDevice_st {
  int used;
  int is_mig;
  int parent;              /* slot of the parent GPU, for a MIG device */
  unsigned gpu_instance;   /* MIG GPU instance ID */
  unsigned compute_instance; /* MIG compute instance ID (0 unless set) */
  int lost;                /* every query answers NVML_ERROR_GPU_IS_LOST */
  int registered;          /* registered for events */
  char uuid[NVML_DEVICE_UUID_V2_BUFFER_SIZE];
  char name[NVML_DEVICE_NAME_V2_BUFFER_SIZE];
  char serial[NVML_DEVICE_SERIAL_BUFFER_SIZE];
  char bus_id[NVML_DEVICE_PCI_BUS_ID_BUFFER_SIZE];
  int has[ATTR_COUNT];
  unsigned long long value[ATTR_COUNT];
  nvmlReturn_t fail[ATTR_COUNT]; /* not NVML_SUCCESS: what the attribute's call answers */
  /* NVLink: links 0..nvlink_count-1 exist (NOT_SUPPORTED when none, INVALID_ARGUMENT past). */
  unsigned nvlink_count;
  int nvlink_active[NVML_NVLINK_MAX_LINKS];
  int nvlink_has[NVML_NVLINK_MAX_LINKS][NVLINK_COUNTERS];
  unsigned long long nvlink_value[NVML_NVLINK_MAX_LINKS][NVLINK_COUNTERS];
  /* Running processes: [0] compute, [1] graphics. */
  unsigned process_count[2];
  nvmlProcessInfo_v1_t processes[2][FAKE_MAX_PROCESSES];
  unsigned sample_count;
  nvmlProcessUtilizationSample_t samples[FAKE_MAX_SAMPLES];
  unsigned long long last_seen; /* lastSeenTimeStamp of the latest per-process utilisation call */
};

extern pthread_mutex_t g_mu;
extern struct nvmlDevice_st g_slots[FAKE_MAX_SLOTS];
extern int g_slot_count;

/* Resolves a handle to its slot; call under g_mu. NULL (and why in *ret) unless initialized,
 * known and not lost. */
struct nvmlDevice_st* fake_lookup(nvmlDevice_t device, nvmlReturn_t* ret);
/* Reads one attribute: its injected failure, NOT_SUPPORTED until the test sets it, or the value.
 * Takes g_mu. */
nvmlReturn_t fake_get_attr(nvmlDevice_t device, int attr, unsigned long long* out);
/* Forgets the system-wide scenario of fake_nvml_counters.c (driver versions); under g_mu. */
void fake_reset_system(void);
/* A slot the test names, under g_mu: NULL when out of range. */
struct nvmlDevice_st* fake_slot(int slot);

#endif  // DEVSCOPE_TEST_COLLECTORS_FAKE_NVML_FAKE_NVML_H_
