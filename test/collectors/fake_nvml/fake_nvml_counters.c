/* The fake libnvidia-ml's counters users alert on, driver versions and processes (see
 * fake_nvml.c for the scenario's shape). With FAKE_NVML_OLD_DRIVER it is a driver from before R535:
 * only the older names of renamed calls (nvmlDeviceGet*ClocksThrottleReasons,
 * nvmlSystemGetCudaDriverVersion), and no nvmlDeviceGetMemoryInfo_v2, nvmlDeviceGetFieldValues,
 * nvmlDeviceGetRemappedRows or nvmlDeviceGetProcessUtilization. */
#include "test/collectors/fake_nvml/fake_nvml.h"

static const char* const kNvLinkCounterNames[NVLINK_COUNTERS] = {
    "replay", "recovery", "crc_flit", "crc_data", "ecc_data", "tx_kib", "rx_kib"};

static char g_driver_version[NVML_SYSTEM_DRIVER_VERSION_BUFFER_SIZE];
static int g_cuda_version; /* 0: not supported */

void fake_reset_system(void) {
  g_driver_version[0] = '\0';
  g_cuda_version = 0;
}

/* ---- the scenario, driven by the test ---- */

/* The driver's version ("" : not supported) and CUDA's (e.g. 12040; 0: not supported). */
FAKE_EXPORT void fake_nvml_set_driver_version(const char* version, int cuda) {
  pthread_mutex_lock(&g_mu);
  strncpy(g_driver_version, version, sizeof(g_driver_version) - 1);
  g_cuda_version = cuda;
  pthread_mutex_unlock(&g_mu);
}

/* Makes NVLink `link` exist (and every lower one), active or not. */
FAKE_EXPORT void fake_nvml_set_nvlink(int slot, unsigned link, int active) {
  pthread_mutex_lock(&g_mu);
  struct nvmlDevice_st* d = fake_slot(slot);
  if (d != NULL && link < NVML_NVLINK_MAX_LINKS) {
    if (d->nvlink_count < link + 1) d->nvlink_count = link + 1;
    d->nvlink_active[link] = active;
  }
  pthread_mutex_unlock(&g_mu);
}

/* Sets a counter of a link: "replay", "recovery", "crc_flit", "crc_data", "ecc_data" (error
 * counters), "tx_kib", "rx_kib" (throughput field values). Returns 0, or -1 for a bad argument. */
FAKE_EXPORT int fake_nvml_set_nvlink_counter(int slot, unsigned link, const char* counter,
                                             unsigned long long value) {
  int result = -1;
  pthread_mutex_lock(&g_mu);
  struct nvmlDevice_st* d = fake_slot(slot);
  for (int i = 0; i < NVLINK_COUNTERS && d != NULL && link < NVML_NVLINK_MAX_LINKS; ++i) {
    if (strcmp(kNvLinkCounterNames[i], counter) == 0) {
      d->nvlink_has[link][i] = 1;
      d->nvlink_value[link][i] = value;
      result = 0;
    }
  }
  pthread_mutex_unlock(&g_mu);
  return result;
}

/* Adds a running compute (graphics = 0) or graphics process. */
FAKE_EXPORT void fake_nvml_add_process(int slot, int graphics, unsigned pid,
                                       unsigned long long used_bytes) {
  pthread_mutex_lock(&g_mu);
  struct nvmlDevice_st* d = fake_slot(slot);
  unsigned* n = d != NULL ? &d->process_count[graphics ? 1 : 0] : NULL;
  if (n != NULL && *n < FAKE_MAX_PROCESSES) {
    d->processes[graphics ? 1 : 0][*n].pid = pid;
    d->processes[graphics ? 1 : 0][*n].usedGpuMemory = used_bytes;
    ++*n;
  }
  pthread_mutex_unlock(&g_mu);
}

/* Adds a per-process utilisation sample (percentages) taken at `timestamp` (microseconds). */
FAKE_EXPORT void fake_nvml_add_process_sample(int slot, unsigned pid, unsigned long long timestamp,
                                              unsigned sm, unsigned memory, unsigned encoder,
                                              unsigned decoder) {
  pthread_mutex_lock(&g_mu);
  struct nvmlDevice_st* d = fake_slot(slot);
  if (d != NULL && d->sample_count < FAKE_MAX_SAMPLES) {
    nvmlProcessUtilizationSample_t* s = &d->samples[d->sample_count++];
    s->pid = pid;
    s->timeStamp = timestamp;
    s->smUtil = sm;
    s->memUtil = memory;
    s->encUtil = encoder;
    s->decUtil = decoder;
  }
  pthread_mutex_unlock(&g_mu);
}

/* The lastSeenTimeStamp the latest nvmlDeviceGetProcessUtilization call on `slot` passed. */
FAKE_EXPORT unsigned long long fake_nvml_last_seen(int slot) {
  pthread_mutex_lock(&g_mu);
  struct nvmlDevice_st* d = fake_slot(slot);
  unsigned long long last = d != NULL ? d->last_seen : 0;
  pthread_mutex_unlock(&g_mu);
  return last;
}

/* ---- the NVML API ---- */

static nvmlReturn_t get_uint(nvmlDevice_t device, int attr, unsigned int* out) {
  unsigned long long value = 0;
  nvmlReturn_t ret = fake_get_attr(device, attr, &value);
  if (ret == NVML_SUCCESS) *out = (unsigned int)value;
  return ret;
}

FAKE_EXPORT nvmlReturn_t nvmlSystemGetDriverVersion(char* version, unsigned int length) {
  pthread_mutex_lock(&g_mu);
  nvmlReturn_t ret = NVML_SUCCESS;
  if (g_driver_version[0] == '\0') {
    ret = NVML_ERROR_NOT_SUPPORTED;
  } else if (strlen(g_driver_version) + 1 > length) {
    ret = NVML_ERROR_INSUFFICIENT_SIZE;
  } else {
    strcpy(version, g_driver_version);
  }
  pthread_mutex_unlock(&g_mu);
  return ret;
}

static nvmlReturn_t cuda_driver_version(int* version) {
  pthread_mutex_lock(&g_mu);
  nvmlReturn_t ret = g_cuda_version != 0 ? NVML_SUCCESS : NVML_ERROR_NOT_SUPPORTED;
  if (ret == NVML_SUCCESS) *version = g_cuda_version;
  pthread_mutex_unlock(&g_mu);
  return ret;
}

static int clock_attr(nvmlClockType_t type, int max) {
  if (type == NVML_CLOCK_SM) return max ? ATTR_MAX_CLOCK_SM : ATTR_CLOCK_SM;
  if (type == NVML_CLOCK_MEM) return max ? ATTR_MAX_CLOCK_MEM : ATTR_CLOCK_MEM;
  return -1;
}

FAKE_EXPORT nvmlReturn_t nvmlDeviceGetClockInfo(nvmlDevice_t device, nvmlClockType_t type,
                                                unsigned int* mhz) {
  int attr = clock_attr(type, 0);
  return attr < 0 ? NVML_ERROR_NOT_SUPPORTED : get_uint(device, attr, mhz);
}

FAKE_EXPORT nvmlReturn_t nvmlDeviceGetMaxClockInfo(nvmlDevice_t device, nvmlClockType_t type,
                                                   unsigned int* mhz) {
  int attr = clock_attr(type, 1);
  return attr < 0 ? NVML_ERROR_NOT_SUPPORTED : get_uint(device, attr, mhz);
}

#ifdef FAKE_NVML_OLD_DRIVER
FAKE_EXPORT nvmlReturn_t nvmlSystemGetCudaDriverVersion(int* version) {
  return cuda_driver_version(version);
}
FAKE_EXPORT nvmlReturn_t nvmlDeviceGetCurrentClocksThrottleReasons(nvmlDevice_t device,
                                                                   unsigned long long* reasons) {
  return fake_get_attr(device, ATTR_CLOCK_EVENTS, reasons);
}
FAKE_EXPORT nvmlReturn_t nvmlDeviceGetSupportedClocksThrottleReasons(nvmlDevice_t device,
                                                                     unsigned long long* reasons) {
  return fake_get_attr(device, ATTR_CLOCK_EVENTS_SUPPORTED, reasons);
}
#else
FAKE_EXPORT nvmlReturn_t nvmlSystemGetCudaDriverVersion_v2(int* version) {
  return cuda_driver_version(version);
}
FAKE_EXPORT nvmlReturn_t nvmlDeviceGetCurrentClocksEventReasons(nvmlDevice_t device,
                                                                unsigned long long* reasons) {
  return fake_get_attr(device, ATTR_CLOCK_EVENTS, reasons);
}
FAKE_EXPORT nvmlReturn_t nvmlDeviceGetSupportedClocksEventReasons(nvmlDevice_t device,
                                                                  unsigned long long* reasons) {
  return fake_get_attr(device, ATTR_CLOCK_EVENTS_SUPPORTED, reasons);
}
#endif

/* Total and used are required; the reserve is 0 unless set, free is what is left unless set. */
static nvmlReturn_t memory_info(nvmlDevice_t device, unsigned long long* total,
                                unsigned long long* reserved, unsigned long long* used,
                                unsigned long long* free_bytes) {
  nvmlReturn_t ret = fake_get_attr(device, ATTR_MEM_TOTAL, total);
  if (ret == NVML_SUCCESS) ret = fake_get_attr(device, ATTR_MEM_USED, used);
  if (ret != NVML_SUCCESS) return ret;
  if (fake_get_attr(device, ATTR_MEM_RESERVED, reserved) != NVML_SUCCESS) *reserved = 0;
  if (fake_get_attr(device, ATTR_MEM_FREE, free_bytes) != NVML_SUCCESS) {
    *free_bytes = *total - *used - *reserved;
  }
  return NVML_SUCCESS;
}

/* The first version: `used` includes the reserve. */
FAKE_EXPORT nvmlReturn_t nvmlDeviceGetMemoryInfo(nvmlDevice_t device, nvmlMemory_t* memory) {
  unsigned long long total, reserved, used, free_bytes;
  nvmlReturn_t ret = memory_info(device, &total, &reserved, &used, &free_bytes);
  if (ret == NVML_SUCCESS) {
    memory->total = total;
    memory->used = used + reserved;
    memory->free = free_bytes;
  }
  return ret;
}

#ifndef FAKE_NVML_OLD_DRIVER
FAKE_EXPORT nvmlReturn_t nvmlDeviceGetMemoryInfo_v2(nvmlDevice_t device, nvmlMemory_v2_t* memory) {
  if (memory->version != nvmlMemory_v2) return NVML_ERROR_ARGUMENT_VERSION_MISMATCH;
  unsigned long long total, reserved, used, free_bytes;
  nvmlReturn_t ret = memory_info(device, &total, &reserved, &used, &free_bytes);
  if (ret == NVML_SUCCESS) {
    memory->total = total;
    memory->reserved = reserved;
    memory->used = used;
    memory->free = free_bytes;
  }
  return ret;
}
#endif

FAKE_EXPORT nvmlReturn_t nvmlDeviceGetEncoderUtilization(nvmlDevice_t device, unsigned int* percent,
                                                         unsigned int* period_us) {
  *period_us = 167000;
  return get_uint(device, ATTR_UTIL_ENCODER, percent);
}

FAKE_EXPORT nvmlReturn_t nvmlDeviceGetDecoderUtilization(nvmlDevice_t device, unsigned int* percent,
                                                         unsigned int* period_us) {
  *period_us = 167000;
  return get_uint(device, ATTR_UTIL_DECODER, percent);
}

FAKE_EXPORT nvmlReturn_t nvmlDeviceGetPcieReplayCounter(nvmlDevice_t device, unsigned int* value) {
  return get_uint(device, ATTR_PCIE_REPLAYS, value);
}

FAKE_EXPORT nvmlReturn_t nvmlDeviceGetPcieThroughput(nvmlDevice_t device,
                                                     nvmlPcieUtilCounter_t counter,
                                                     unsigned int* value) {
  return get_uint(device, counter == NVML_PCIE_UTIL_TX_BYTES ? ATTR_PCIE_TX_KB : ATTR_PCIE_RX_KB,
                  value);
}

FAKE_EXPORT nvmlReturn_t nvmlDeviceGetEnforcedPowerLimit(nvmlDevice_t device, unsigned int* mw) {
  return get_uint(device, ATTR_POWER_LIMIT_MW, mw);
}

FAKE_EXPORT nvmlReturn_t nvmlDeviceGetRetiredPages(nvmlDevice_t device,
                                                   nvmlPageRetirementCause_t cause,
                                                   unsigned int* count,
                                                   unsigned long long* addresses) {
  unsigned long long pages = 0;
  nvmlReturn_t ret = fake_get_attr(
      device,
      cause == NVML_PAGE_RETIREMENT_CAUSE_DOUBLE_BIT_ECC_ERROR ? ATTR_RETIRED_DBE
                                                                : ATTR_RETIRED_SBE,
      &pages);
  if (ret != NVML_SUCCESS) return ret;
  /* As NVML: with too little room, how many there are and INSUFFICIENT_SIZE. */
  if (*count < pages) ret = NVML_ERROR_INSUFFICIENT_SIZE;
  for (unsigned long long i = 0; ret == NVML_SUCCESS && addresses != NULL && i < pages; ++i) {
    addresses[i] = 0x1000 * (i + 1);
  }
  *count = (unsigned int)pages;
  return ret;
}

FAKE_EXPORT nvmlReturn_t nvmlDeviceGetRetiredPagesPendingStatus(nvmlDevice_t device,
                                                                nvmlEnableState_t* pending) {
  unsigned long long value = 0;
  nvmlReturn_t ret = fake_get_attr(device, ATTR_RETIRED_PENDING, &value);
  if (ret == NVML_SUCCESS) *pending = value ? NVML_FEATURE_ENABLED : NVML_FEATURE_DISABLED;
  return ret;
}

#ifndef FAKE_NVML_OLD_DRIVER
FAKE_EXPORT nvmlReturn_t nvmlDeviceGetRemappedRows(nvmlDevice_t device, unsigned int* correctable,
                                                   unsigned int* uncorrectable,
                                                   unsigned int* pending, unsigned int* failed) {
  nvmlReturn_t ret = get_uint(device, ATTR_REMAPPED_CORRECTABLE, correctable);
  if (ret == NVML_SUCCESS) ret = get_uint(device, ATTR_REMAPPED_UNCORRECTABLE, uncorrectable);
  if (ret == NVML_SUCCESS) ret = get_uint(device, ATTR_REMAP_PENDING, pending);
  if (ret == NVML_SUCCESS) ret = get_uint(device, ATTR_REMAP_FAILED, failed);
  return ret;
}
#endif

/* A link of the device under g_mu: NOT_SUPPORTED without NVLink, INVALID_ARGUMENT past the last. */
static struct nvmlDevice_st* lookup_link(nvmlDevice_t device, unsigned link, nvmlReturn_t* ret) {
  struct nvmlDevice_st* d = fake_lookup(device, ret);
  if (d != NULL && d->nvlink_count == 0) {
    *ret = NVML_ERROR_NOT_SUPPORTED;
  } else if (d != NULL && link >= d->nvlink_count) {
    *ret = NVML_ERROR_INVALID_ARGUMENT;
  }
  return *ret == NVML_SUCCESS ? d : NULL;
}

FAKE_EXPORT nvmlReturn_t nvmlDeviceGetNvLinkState(nvmlDevice_t device, unsigned int link,
                                                  nvmlEnableState_t* active) {
  nvmlReturn_t ret;
  pthread_mutex_lock(&g_mu);
  struct nvmlDevice_st* d = lookup_link(device, link, &ret);
  if (d != NULL) *active = d->nvlink_active[link] ? NVML_FEATURE_ENABLED : NVML_FEATURE_DISABLED;
  pthread_mutex_unlock(&g_mu);
  return ret;
}

FAKE_EXPORT nvmlReturn_t nvmlDeviceGetNvLinkErrorCounter(nvmlDevice_t device, unsigned int link,
                                                         nvmlNvLinkErrorCounter_t counter,
                                                         unsigned long long* value) {
  nvmlReturn_t ret;
  pthread_mutex_lock(&g_mu);
  struct nvmlDevice_st* d = lookup_link(device, link, &ret);
  if (d != NULL) {
    if ((unsigned)counter >= NVLINK_TX_KIB) {
      ret = NVML_ERROR_INVALID_ARGUMENT;
    } else if (!d->nvlink_has[link][counter]) {
      ret = NVML_ERROR_NOT_SUPPORTED;
    } else {
      *value = d->nvlink_value[link][counter];
    }
  }
  pthread_mutex_unlock(&g_mu);
  return ret;
}

#ifndef FAKE_NVML_OLD_DRIVER
/* One field of `d` under g_mu: the memory temperature and the NVLink throughput counters. */
static void field_value(struct nvmlDevice_st* d, nvmlFieldValue_t* field) {
  field->timestamp = 1700000000000000LL;
  field->nvmlReturn = NVML_ERROR_NOT_SUPPORTED;
  if (field->fieldId == NVML_FI_DEV_MEMORY_TEMP) {
    if (d->fail[ATTR_MEM_TEMPERATURE] != NVML_SUCCESS) {
      field->nvmlReturn = d->fail[ATTR_MEM_TEMPERATURE];
    } else if (d->has[ATTR_MEM_TEMPERATURE]) {
      field->valueType = NVML_VALUE_TYPE_UNSIGNED_INT;
      field->value.uiVal = (unsigned int)d->value[ATTR_MEM_TEMPERATURE];
      field->nvmlReturn = NVML_SUCCESS;
    }
    return;
  }
  int counter = field->fieldId == NVML_FI_DEV_NVLINK_THROUGHPUT_DATA_TX   ? NVLINK_TX_KIB
                : field->fieldId == NVML_FI_DEV_NVLINK_THROUGHPUT_DATA_RX ? NVLINK_RX_KIB
                                                                          : -1;
  if (counter < 0 || field->scopeId >= d->nvlink_count) return;
  if (d->nvlink_has[field->scopeId][counter]) {
    field->valueType = NVML_VALUE_TYPE_UNSIGNED_LONG_LONG;
    field->value.ullVal = d->nvlink_value[field->scopeId][counter];
    field->nvmlReturn = NVML_SUCCESS;
  }
}

FAKE_EXPORT nvmlReturn_t nvmlDeviceGetFieldValues(nvmlDevice_t device, int count,
                                                  nvmlFieldValue_t* values) {
  nvmlReturn_t ret;
  pthread_mutex_lock(&g_mu);
  struct nvmlDevice_st* d = fake_lookup(device, &ret);
  for (int i = 0; d != NULL && i < count; ++i) field_value(d, &values[i]);
  pthread_mutex_unlock(&g_mu);
  return ret;
}
#endif

/* A running-process list (0 compute, 1 graphics), as NVML: INSUFFICIENT_SIZE and the number when
 * `count` has too little room. */
static nvmlReturn_t running(nvmlDevice_t device, int graphics, unsigned int* count,
                            nvmlProcessInfo_v1_t* infos) {
  nvmlReturn_t ret;
  pthread_mutex_lock(&g_mu);
  struct nvmlDevice_st* d = fake_lookup(device, &ret);
  if (d != NULL) {
    const unsigned n = d->process_count[graphics];
    const nvmlReturn_t fail = d->fail[graphics ? ATTR_GRAPHICS_PROCESSES : ATTR_COMPUTE_PROCESSES];
    if (fail != NVML_SUCCESS) {
      ret = fail;
    } else if (*count < n) {
      ret = NVML_ERROR_INSUFFICIENT_SIZE;
    } else {
      memcpy(infos, d->processes[graphics], n * sizeof(*infos));
    }
    if (fail == NVML_SUCCESS) *count = n;
  }
  pthread_mutex_unlock(&g_mu);
  return ret;
}

FAKE_EXPORT nvmlReturn_t nvmlDeviceGetComputeRunningProcesses(nvmlDevice_t device,
                                                              unsigned int* count,
                                                              nvmlProcessInfo_v1_t* infos) {
  return running(device, 0, count, infos);
}

FAKE_EXPORT nvmlReturn_t nvmlDeviceGetGraphicsRunningProcesses(nvmlDevice_t device,
                                                               unsigned int* count,
                                                               nvmlProcessInfo_v1_t* infos) {
  return running(device, 1, count, infos);
}

#ifndef FAKE_NVML_OLD_DRIVER
/* The samples newer than `last_seen`: with no buffer, how many (INSUFFICIENT_SIZE); NOT_FOUND when
 * there are none. */
FAKE_EXPORT nvmlReturn_t nvmlDeviceGetProcessUtilization(nvmlDevice_t device,
                                                         nvmlProcessUtilizationSample_t* samples,
                                                         unsigned int* count,
                                                         unsigned long long last_seen) {
  nvmlReturn_t ret;
  pthread_mutex_lock(&g_mu);
  struct nvmlDevice_st* d = fake_lookup(device, &ret);
  if (d != NULL && d->fail[ATTR_PROCESS_UTILIZATION] != NVML_SUCCESS) {
    ret = d->fail[ATTR_PROCESS_UTILIZATION];
  } else if (d != NULL && !d->has[ATTR_PROCESS_UTILIZATION]) {
    ret = NVML_ERROR_NOT_SUPPORTED;
  } else if (d != NULL) {
    d->last_seen = last_seen;
    unsigned newer = 0;
    for (unsigned i = 0; i < d->sample_count; ++i) newer += d->samples[i].timeStamp > last_seen;
    if (newer == 0) {
      ret = NVML_ERROR_NOT_FOUND;
    } else if (samples == NULL || *count < newer) {
      ret = NVML_ERROR_INSUFFICIENT_SIZE;
    } else {
      unsigned n = 0;
      for (unsigned i = 0; i < d->sample_count; ++i) {
        if (d->samples[i].timeStamp > last_seen) samples[n++] = d->samples[i];
      }
    }
    if (newer > 0) *count = newer;
  }
  pthread_mutex_unlock(&g_mu);
  return ret;
}
#endif
