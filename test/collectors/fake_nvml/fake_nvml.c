/* A fake libnvidia-ml for the nvml collector's tests: the same exported NVML symbols (with the
 * types of collectors/nvml_api.h), over an in-memory scenario that the test drives through the
 * exported fake_nvml_* functions, which it resolves with dlsym() from the same handle the
 * collector dlopen()s (dlopen of one path returns one instance, so both see the same state).
 *
 * Slots 0..gpu_count-1 are the physical GPUs (in NVML index order); MIG devices take the slots
 * after them. Every attribute is NVML_ERROR_NOT_SUPPORTED until the test sets it.
 *
 * Built twice: as today's driver, and with FAKE_NVML_OLD_DRIVER as a driver from before R535
 * that lacks the newer calls (fake_nvml_counters.c says which). */
#include "test/collectors/fake_nvml/fake_nvml.h"

#include <stdio.h>
#include <stdlib.h>
#include <time.h>

#define FAKE_MAX_EVENTS 64

const char* const kFakeAttrNames[ATTR_COUNT] = {
    "util_gpu",         "util_memory",        "mem_total",
    "mem_used",         "mem_free",           "temperature",
    "power_mw",         "energy_mj",          "ecc_corrected",
    "ecc_uncorrected",  "minor",              "serial",
    "clock_sm",         "clock_mem",          "max_clock_sm",
    "max_clock_mem",    "clock_events",       "clock_events_supported",
    "util_encoder",     "util_decoder",       "mem_reserved",
    "mem_temperature",  "pcie_replays",       "pcie_tx_kb",
    "pcie_rx_kb",       "retired_sbe",        "retired_dbe",
    "retired_pending",  "remapped_correctable", "remapped_uncorrectable",
    "remap_pending",    "remap_failed",       "power_limit_mw",
    "compute_processes", "graphics_processes", "process_utilization"};

struct nvmlEventSet_st {
  int open;
};

struct fake_event {
  int slot;
  unsigned long long xid;
  unsigned gpu_instance;
};

pthread_mutex_t g_mu = PTHREAD_MUTEX_INITIALIZER;
static pthread_cond_t g_cond = PTHREAD_COND_INITIALIZER;
struct nvmlDevice_st g_slots[FAKE_MAX_SLOTS];
static int g_gpu_count;
int g_slot_count;
static int g_initialized;
static nvmlReturn_t g_init_result;
static int g_init_calls, g_shutdown_calls;
static struct nvmlEventSet_st g_event_set;
static int g_event_sets_open;
static struct fake_event g_events[FAKE_MAX_EVENTS];
static int g_event_head, g_event_count;

/* Copies src into dst, cut to fit as NVML cuts what does not fit its buffers. */
static void copy_string(char* dst, size_t size, const char* src) {
  size_t n = src != NULL ? strlen(src) : 0;
  if (n >= size) n = size - 1;
  if (n > 0) memmove(dst, src, n);
  dst[n] = '\0';
}

/* ---- the scenario, driven by the test ---- */

FAKE_EXPORT void fake_nvml_reset(void) {
  pthread_mutex_lock(&g_mu);
  memset(g_slots, 0, sizeof(g_slots));
  g_gpu_count = g_slot_count = 0;
  g_initialized = 0;
  g_init_result = NVML_SUCCESS;
  g_init_calls = g_shutdown_calls = 0;
  g_event_sets_open = 0;
  g_event_head = g_event_count = 0;
  fake_reset_system();
  pthread_mutex_unlock(&g_mu);
}

FAKE_EXPORT void fake_nvml_set_init_result(int result) {
  pthread_mutex_lock(&g_mu);
  g_init_result = (nvmlReturn_t)result;
  pthread_mutex_unlock(&g_mu);
}

/* Adds a physical GPU; returns its slot (= NVML index). Add every GPU before any MIG device. */
FAKE_EXPORT int fake_nvml_add_gpu(const char* uuid, const char* name, const char* bus_id) {
  pthread_mutex_lock(&g_mu);
  int slot = -1;
  if (g_slot_count < FAKE_MAX_SLOTS && g_slot_count == g_gpu_count) {
    slot = g_slot_count++;
    g_gpu_count++;
    struct nvmlDevice_st* d = &g_slots[slot];
    d->used = 1;
    copy_string(d->uuid, sizeof(d->uuid), uuid);
    copy_string(d->name, sizeof(d->name), name);
    copy_string(d->bus_id, sizeof(d->bus_id), bus_id);
  }
  pthread_mutex_unlock(&g_mu);
  return slot;
}

/* Adds a MIG device under the GPU in `parent`, which turns MIG mode on for it. */
FAKE_EXPORT int fake_nvml_add_mig(int parent, const char* uuid, const char* name,
                                  unsigned gpu_instance) {
  pthread_mutex_lock(&g_mu);
  int slot = -1;
  if (g_slot_count < FAKE_MAX_SLOTS && parent >= 0 && parent < g_gpu_count) {
    slot = g_slot_count++;
    struct nvmlDevice_st* d = &g_slots[slot];
    d->used = 1;
    d->is_mig = 1;
    d->parent = parent;
    d->gpu_instance = gpu_instance;
    copy_string(d->uuid, sizeof(d->uuid), uuid);
    copy_string(d->name, sizeof(d->name), name);
    copy_string(d->bus_id, sizeof(d->bus_id), g_slots[parent].bus_id);
  }
  pthread_mutex_unlock(&g_mu);
  return slot;
}

/* Sets a MIG device's compute instance ID; returns 0, or -1 for a slot that is not MIG. */
FAKE_EXPORT int fake_nvml_set_compute_instance(int slot, unsigned compute_instance) {
  int result = -1;
  pthread_mutex_lock(&g_mu);
  if (slot >= 0 && slot < g_slot_count && g_slots[slot].is_mig) {
    g_slots[slot].compute_instance = compute_instance;
    result = 0;
  }
  pthread_mutex_unlock(&g_mu);
  return result;
}

/* Sets an attribute by name (see kAttrNames); returns 0, or -1 for an unknown name or slot. */
FAKE_EXPORT int fake_nvml_set(int slot, const char* attr, unsigned long long value) {
  int result = -1;
  pthread_mutex_lock(&g_mu);
  for (int i = 0; i < ATTR_COUNT && slot >= 0 && slot < g_slot_count; ++i) {
    if (strcmp(kFakeAttrNames[i], attr) == 0) {
      g_slots[slot].has[i] = 1;
      g_slots[slot].value[i] = value;
      result = 0;
    }
  }
  pthread_mutex_unlock(&g_mu);
  return result;
}

/* Makes the calls of an attribute (see kFakeAttrNames) answer `result` until it is set to
 * NVML_SUCCESS again; returns 0, or -1 for an unknown name or slot. */
FAKE_EXPORT int fake_nvml_fail(int slot, const char* attr, int result) {
  int found = -1;
  pthread_mutex_lock(&g_mu);
  for (int i = 0; i < ATTR_COUNT && slot >= 0 && slot < g_slot_count; ++i) {
    if (strcmp(kFakeAttrNames[i], attr) == 0) {
      g_slots[slot].fail[i] = (nvmlReturn_t)result;
      found = 0;
    }
  }
  pthread_mutex_unlock(&g_mu);
  return found;
}

FAKE_EXPORT void fake_nvml_set_serial(int slot, const char* serial) {
  pthread_mutex_lock(&g_mu);
  if (slot >= 0 && slot < g_slot_count) {
    copy_string(g_slots[slot].serial, sizeof(g_slots[slot].serial), serial);
    g_slots[slot].has[ATTR_SERIAL_SET] = 1;
  }
  pthread_mutex_unlock(&g_mu);
}

FAKE_EXPORT void fake_nvml_set_lost(int slot, int lost) {
  pthread_mutex_lock(&g_mu);
  if (slot >= 0 && slot < g_slot_count) g_slots[slot].lost = lost;
  pthread_mutex_unlock(&g_mu);
}

/* Queues an XID event on the GPU in `slot` (a physical GPU); gpu_instance is
 * NVML_INVALID_INSTANCE_ID for the whole GPU. Dropped unless the GPU is registered for XIDs. */
FAKE_EXPORT void fake_nvml_inject_xid(int slot, unsigned long long xid, unsigned gpu_instance) {
  pthread_mutex_lock(&g_mu);
  if (slot >= 0 && slot < g_gpu_count && g_slots[slot].registered &&
      g_event_count < FAKE_MAX_EVENTS) {
    struct fake_event* e = &g_events[(g_event_head + g_event_count) % FAKE_MAX_EVENTS];
    e->slot = slot;
    e->xid = xid;
    e->gpu_instance = gpu_instance;
    g_event_count++;
    pthread_cond_broadcast(&g_cond);
  }
  pthread_mutex_unlock(&g_mu);
}

/* A process that cannot drive the fake through fake_nvml_* (devscope itself, run in a container by
 * the deployment test) gets GPUs from the environment when the library loads: FAKE_NVML_GPUS=N
 * makes N GPUs, GPU i with UUID GPU-fa4e0000-0000-4000-8000-0000000000<i>, bus ID
 * 00000000:<3b+i>:00.0, minor number i, 80 GiB of memory and a temperature. */
__attribute__((constructor)) static void fake_nvml_from_environment(void) {
  const char* text = getenv("FAKE_NVML_GPUS");
  if (text == NULL) return;
  int count = atoi(text);
  for (int i = 0; i < count && i < 16; ++i) {
    char uuid[64], bus_id[32];
    snprintf(uuid, sizeof(uuid), "GPU-fa4e0000-0000-4000-8000-0000000000%02d", i);
    snprintf(bus_id, sizeof(bus_id), "00000000:%02X:00.0", 0x3b + i);
    int slot = fake_nvml_add_gpu(uuid, "Fake GPU", bus_id);
    fake_nvml_set(slot, "minor", (unsigned long long)i);
    fake_nvml_set(slot, "mem_total", 80ULL << 30);
    fake_nvml_set(slot, "mem_used", 1ULL << 30);
    fake_nvml_set(slot, "temperature", 40);
  }
}

FAKE_EXPORT int fake_nvml_registered(int slot) {
  pthread_mutex_lock(&g_mu);
  int registered = slot >= 0 && slot < g_slot_count ? g_slots[slot].registered : 0;
  pthread_mutex_unlock(&g_mu);
  return registered;
}

/* Balance checks: every init is shut down, every event set freed. */
FAKE_EXPORT int fake_nvml_init_calls(void) { return g_init_calls; }
FAKE_EXPORT int fake_nvml_shutdown_calls(void) { return g_shutdown_calls; }
FAKE_EXPORT int fake_nvml_event_sets_open(void) { return g_event_sets_open; }

/* ---- the NVML API ---- */

struct nvmlDevice_st* fake_slot(int slot) {
  return slot >= 0 && slot < g_slot_count ? &g_slots[slot] : NULL;
}

struct nvmlDevice_st* fake_lookup(nvmlDevice_t device, nvmlReturn_t* ret) {
  if (!g_initialized) {
    *ret = NVML_ERROR_UNINITIALIZED;
    return NULL;
  }
  if (device < g_slots || device >= g_slots + g_slot_count || !device->used) {
    *ret = NVML_ERROR_INVALID_ARGUMENT;
    return NULL;
  }
  if (device->lost) {
    *ret = NVML_ERROR_GPU_IS_LOST;
    return NULL;
  }
  *ret = NVML_SUCCESS;
  return device;
}

nvmlReturn_t fake_get_attr(nvmlDevice_t device, int attr, unsigned long long* out) {
  nvmlReturn_t ret;
  pthread_mutex_lock(&g_mu);
  struct nvmlDevice_st* d = fake_lookup(device, &ret);
  if (d != NULL) {
    if (d->fail[attr] != NVML_SUCCESS) {
      ret = d->fail[attr];
    } else if (d->has[attr]) {
      *out = d->value[attr];
    } else {
      ret = NVML_ERROR_NOT_SUPPORTED;
    }
  }
  pthread_mutex_unlock(&g_mu);
  return ret;
}

static nvmlReturn_t get_string(nvmlDevice_t device, size_t offset, char* out, unsigned int length) {
  nvmlReturn_t ret;
  if (out == NULL) return NVML_ERROR_INVALID_ARGUMENT;
  pthread_mutex_lock(&g_mu);
  struct nvmlDevice_st* d = fake_lookup(device, &ret);
  if (d != NULL) {
    const char* value = (const char*)d + offset;
    if (strlen(value) + 1 > length) {
      ret = NVML_ERROR_INSUFFICIENT_SIZE;
    } else {
      strcpy(out, value);
    }
  }
  pthread_mutex_unlock(&g_mu);
  return ret;
}

FAKE_EXPORT nvmlReturn_t nvmlInit_v2(void) {
  pthread_mutex_lock(&g_mu);
  g_init_calls++;
  nvmlReturn_t ret = g_init_result;
  if (ret == NVML_SUCCESS) g_initialized++;
  pthread_mutex_unlock(&g_mu);
  return ret;
}

FAKE_EXPORT nvmlReturn_t nvmlShutdown(void) {
  pthread_mutex_lock(&g_mu);
  nvmlReturn_t ret = NVML_ERROR_UNINITIALIZED;
  if (g_initialized > 0) {
    g_initialized--;
    g_shutdown_calls++;
    ret = NVML_SUCCESS;
  }
  pthread_mutex_unlock(&g_mu);
  return ret;
}

FAKE_EXPORT const char* nvmlErrorString(nvmlReturn_t result) {
  switch (result) {
    case NVML_SUCCESS: return "Success";
    case NVML_ERROR_UNINITIALIZED: return "Uninitialized";
    case NVML_ERROR_INVALID_ARGUMENT: return "Invalid Argument";
    case NVML_ERROR_NOT_SUPPORTED: return "Not Supported";
    case NVML_ERROR_NOT_FOUND: return "Not Found";
    case NVML_ERROR_DRIVER_NOT_LOADED: return "Driver Not Loaded";
    case NVML_ERROR_TIMEOUT: return "Timeout";
    case NVML_ERROR_GPU_IS_LOST: return "GPU is lost";
    default: return "Unknown Error";
  }
}

FAKE_EXPORT nvmlReturn_t nvmlDeviceGetCount_v2(unsigned int* count) {
  pthread_mutex_lock(&g_mu);
  nvmlReturn_t ret = g_initialized ? NVML_SUCCESS : NVML_ERROR_UNINITIALIZED;
  if (ret == NVML_SUCCESS) *count = (unsigned int)g_gpu_count;
  pthread_mutex_unlock(&g_mu);
  return ret;
}

FAKE_EXPORT nvmlReturn_t nvmlDeviceGetHandleByIndex_v2(unsigned int index, nvmlDevice_t* device) {
  pthread_mutex_lock(&g_mu);
  nvmlReturn_t ret = NVML_SUCCESS;
  if (!g_initialized) {
    ret = NVML_ERROR_UNINITIALIZED;
  } else if (index >= (unsigned int)g_gpu_count) {
    ret = NVML_ERROR_INVALID_ARGUMENT;
  } else if (g_slots[index].lost) {
    ret = NVML_ERROR_GPU_IS_LOST;
  } else {
    *device = &g_slots[index];
  }
  pthread_mutex_unlock(&g_mu);
  return ret;
}

FAKE_EXPORT nvmlReturn_t nvmlDeviceGetUUID(nvmlDevice_t device, char* uuid, unsigned int length) {
  return get_string(device, offsetof(struct nvmlDevice_st, uuid), uuid, length);
}

FAKE_EXPORT nvmlReturn_t nvmlDeviceGetName(nvmlDevice_t device, char* name, unsigned int length) {
  return get_string(device, offsetof(struct nvmlDevice_st, name), name, length);
}

FAKE_EXPORT nvmlReturn_t nvmlDeviceGetSerial(nvmlDevice_t device, char* serial,
                                             unsigned int length) {
  unsigned long long unused;
  nvmlReturn_t ret = fake_get_attr(device, ATTR_SERIAL_SET, &unused);
  if (ret != NVML_SUCCESS) return ret;
  return get_string(device, offsetof(struct nvmlDevice_st, serial), serial, length);
}

FAKE_EXPORT nvmlReturn_t nvmlDeviceGetMinorNumber(nvmlDevice_t device, unsigned int* minor) {
  unsigned long long value = 0;
  nvmlReturn_t ret = fake_get_attr(device, ATTR_MINOR, &value);
  if (ret == NVML_SUCCESS) *minor = (unsigned int)value;
  return ret;
}

FAKE_EXPORT nvmlReturn_t nvmlDeviceGetPciInfo_v3(nvmlDevice_t device, nvmlPciInfo_t* pci) {
  nvmlReturn_t ret;
  pthread_mutex_lock(&g_mu);
  struct nvmlDevice_st* d = fake_lookup(device, &ret);
  if (d != NULL) {
    memset(pci, 0, sizeof(*pci));
    copy_string(pci->busId, sizeof(pci->busId), d->bus_id);
    copy_string(pci->busIdLegacy, sizeof(pci->busIdLegacy), d->bus_id);
    pci->pciDeviceId = 0x20b010deu;
  }
  pthread_mutex_unlock(&g_mu);
  return ret;
}

FAKE_EXPORT nvmlReturn_t nvmlDeviceGetUtilizationRates(nvmlDevice_t device,
                                                       nvmlUtilization_t* utilization) {
  unsigned long long gpu = 0, memory = 0;
  nvmlReturn_t ret = fake_get_attr(device, ATTR_UTIL_GPU, &gpu);
  if (ret == NVML_SUCCESS) ret = fake_get_attr(device, ATTR_UTIL_MEMORY, &memory);
  if (ret == NVML_SUCCESS) {
    utilization->gpu = (unsigned int)gpu;
    utilization->memory = (unsigned int)memory;
  }
  return ret;
}

FAKE_EXPORT nvmlReturn_t nvmlDeviceGetTemperature(nvmlDevice_t device,
                                                  nvmlTemperatureSensors_t sensor,
                                                  unsigned int* temp) {
  if (sensor != NVML_TEMPERATURE_GPU) return NVML_ERROR_INVALID_ARGUMENT;
  unsigned long long value = 0;
  nvmlReturn_t ret = fake_get_attr(device, ATTR_TEMPERATURE, &value);
  if (ret == NVML_SUCCESS) *temp = (unsigned int)value;
  return ret;
}

FAKE_EXPORT nvmlReturn_t nvmlDeviceGetPowerUsage(nvmlDevice_t device, unsigned int* power) {
  unsigned long long value = 0;
  nvmlReturn_t ret = fake_get_attr(device, ATTR_POWER_MW, &value);
  if (ret == NVML_SUCCESS) *power = (unsigned int)value;
  return ret;
}

FAKE_EXPORT nvmlReturn_t nvmlDeviceGetTotalEnergyConsumption(nvmlDevice_t device,
                                                             unsigned long long* energy) {
  return fake_get_attr(device, ATTR_ENERGY_MJ, energy);
}

FAKE_EXPORT nvmlReturn_t nvmlDeviceGetTotalEccErrors(nvmlDevice_t device,
                                                     nvmlMemoryErrorType_t type,
                                                     nvmlEccCounterType_t counter,
                                                     unsigned long long* count) {
  (void)counter;
  return fake_get_attr(device,
                  type == NVML_MEMORY_ERROR_TYPE_CORRECTED ? ATTR_ECC_CORRECTED
                                                           : ATTR_ECC_UNCORRECTED,
                  count);
}

static int mig_children(int parent, int* children, int max) {
  int n = 0;
  for (int i = g_gpu_count; i < g_slot_count && n < max; ++i) {
    if (g_slots[i].is_mig && g_slots[i].parent == parent) children[n++] = i;
  }
  return n;
}

FAKE_EXPORT nvmlReturn_t nvmlDeviceGetMigMode(nvmlDevice_t device, unsigned int* current,
                                              unsigned int* pending) {
  nvmlReturn_t ret;
  pthread_mutex_lock(&g_mu);
  struct nvmlDevice_st* d = fake_lookup(device, &ret);
  if (d != NULL) {
    int children[FAKE_MAX_SLOTS];
    int n = d->is_mig ? 0 : mig_children((int)(d - g_slots), children, FAKE_MAX_SLOTS);
    *current = *pending = n > 0 ? NVML_DEVICE_MIG_ENABLE : NVML_DEVICE_MIG_DISABLE;
  }
  pthread_mutex_unlock(&g_mu);
  return ret;
}

FAKE_EXPORT nvmlReturn_t nvmlDeviceGetMaxMigDeviceCount(nvmlDevice_t device, unsigned int* count) {
  nvmlReturn_t ret;
  pthread_mutex_lock(&g_mu);
  struct nvmlDevice_st* d = fake_lookup(device, &ret);
  if (d != NULL) *count = 7;
  pthread_mutex_unlock(&g_mu);
  return ret;
}

FAKE_EXPORT nvmlReturn_t nvmlDeviceGetMigDeviceHandleByIndex(nvmlDevice_t device,
                                                             unsigned int index,
                                                             nvmlDevice_t* mig) {
  nvmlReturn_t ret;
  pthread_mutex_lock(&g_mu);
  struct nvmlDevice_st* d = fake_lookup(device, &ret);
  if (d != NULL) {
    int children[FAKE_MAX_SLOTS];
    int n = mig_children((int)(d - g_slots), children, FAKE_MAX_SLOTS);
    if (index < (unsigned int)n) {
      *mig = &g_slots[children[index]];
    } else {
      ret = NVML_ERROR_NOT_FOUND;
    }
  }
  pthread_mutex_unlock(&g_mu);
  return ret;
}

/* A MIG device's GPU instance ID (compute = 0) or compute instance ID (compute = 1); a whole GPU
 * has neither, and NVML answers INVALID_ARGUMENT for it. */
static nvmlReturn_t mig_instance_id(nvmlDevice_t device, int compute, unsigned int* id) {
  nvmlReturn_t ret;
  pthread_mutex_lock(&g_mu);
  struct nvmlDevice_st* d = fake_lookup(device, &ret);
  if (d != NULL) {
    if (d->is_mig) {
      *id = compute ? d->compute_instance : d->gpu_instance;
    } else {
      ret = NVML_ERROR_INVALID_ARGUMENT;
    }
  }
  pthread_mutex_unlock(&g_mu);
  return ret;
}

FAKE_EXPORT nvmlReturn_t nvmlDeviceGetComputeInstanceId(nvmlDevice_t device, unsigned int* id) {
  return mig_instance_id(device, 1, id);
}

FAKE_EXPORT nvmlReturn_t nvmlDeviceGetGpuInstanceId(nvmlDevice_t device, unsigned int* id) {
  return mig_instance_id(device, 0, id);
}

FAKE_EXPORT nvmlReturn_t nvmlEventSetCreate(nvmlEventSet_t* set) {
  pthread_mutex_lock(&g_mu);
  nvmlReturn_t ret = g_initialized ? NVML_SUCCESS : NVML_ERROR_UNINITIALIZED;
  if (ret == NVML_SUCCESS) {
    g_event_set.open = 1;
    g_event_sets_open++;
    *set = &g_event_set;
  }
  pthread_mutex_unlock(&g_mu);
  return ret;
}

FAKE_EXPORT nvmlReturn_t nvmlDeviceRegisterEvents(nvmlDevice_t device,
                                                  unsigned long long types, nvmlEventSet_t set) {
  nvmlReturn_t ret;
  pthread_mutex_lock(&g_mu);
  struct nvmlDevice_st* d = fake_lookup(device, &ret);
  if (d != NULL) {
    if (set != &g_event_set || d->is_mig) {
      ret = NVML_ERROR_INVALID_ARGUMENT;
    } else if (types & nvmlEventTypeXidCriticalError) {
      d->registered = 1;
    }
  }
  pthread_mutex_unlock(&g_mu);
  return ret;
}

FAKE_EXPORT nvmlReturn_t nvmlEventSetWait_v2(nvmlEventSet_t set, nvmlEventData_t* data,
                                             unsigned int timeoutms) {
  if (set != &g_event_set) return NVML_ERROR_INVALID_ARGUMENT;
  struct timespec deadline;
  clock_gettime(CLOCK_REALTIME, &deadline);
  deadline.tv_sec += timeoutms / 1000;
  deadline.tv_nsec += (long)(timeoutms % 1000) * 1000000L;
  if (deadline.tv_nsec >= 1000000000L) {
    deadline.tv_sec++;
    deadline.tv_nsec -= 1000000000L;
  }
  pthread_mutex_lock(&g_mu);
  int timed_out = 0;
  while (g_event_count == 0 && !timed_out) {
    timed_out = pthread_cond_timedwait(&g_cond, &g_mu, &deadline) != 0;
  }
  nvmlReturn_t ret = NVML_ERROR_TIMEOUT;
  if (g_event_count > 0) {
    struct fake_event* e = &g_events[g_event_head];
    g_event_head = (g_event_head + 1) % FAKE_MAX_EVENTS;
    g_event_count--;
    memset(data, 0, sizeof(*data));
    data->device = &g_slots[e->slot];
    data->eventType = nvmlEventTypeXidCriticalError;
    data->eventData = e->xid;
    data->gpuInstanceId = e->gpu_instance;
    data->computeInstanceId = NVML_INVALID_INSTANCE_ID;
    ret = NVML_SUCCESS;
  }
  pthread_mutex_unlock(&g_mu);
  return ret;
}

FAKE_EXPORT nvmlReturn_t nvmlEventSetFree(nvmlEventSet_t set) {
  pthread_mutex_lock(&g_mu);
  nvmlReturn_t ret = NVML_ERROR_INVALID_ARGUMENT;
  if (set == &g_event_set && g_event_sets_open > 0) {
    g_event_sets_open--;
    ret = NVML_SUCCESS;
  }
  pthread_mutex_unlock(&g_mu);
  return ret;
}
