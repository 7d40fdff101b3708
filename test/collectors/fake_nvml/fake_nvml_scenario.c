/* The fake libnvidia-ml driven from outside the process: when FAKE_NVML_SCENARIO names a file as
 * the library is loaded, its lines set the scenario up, for tests that run the real devscope
 * binary (which cannot call the fake_nvml_* functions). One directive a line, # comments:
 *
 *   gpu UUID BUS_ID NAME...                        a GPU (slots in order: 0, 1, ...)
 *   set SLOT ATTR VALUE                            fake_nvml_set (ATTR as kFakeAttrNames)
 *   process SLOT compute|graphics PID BYTES        a running process and its memory
 *   sample SLOT PID SM MEMORY ENCODER DECODER      a per-process utilisation sample (percent)
 *
 * NVML hands out a process's samples newer than the caller's last look only, so while the
 * library is loaded a thread keeps the samples' timestamps at the present (every 50 ms): every
 * collector pass sees them. It stops when the library is unloaded. A line that does not parse
 * aborts: the test's scenario is wrong. */
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "test/collectors/fake_nvml/fake_nvml.h"

int fake_nvml_add_gpu(const char* uuid, const char* name, const char* bus_id);
int fake_nvml_set(int slot, const char* attr, unsigned long long value);
void fake_nvml_add_process(int slot, int graphics, unsigned pid, unsigned long long used_bytes);
void fake_nvml_add_process_sample(int slot, unsigned pid, unsigned long long timestamp,
                                  unsigned sm, unsigned memory, unsigned encoder,
                                  unsigned decoder);

static pthread_t g_refresher;
static int g_refreshing;
static pthread_mutex_t g_stop_mu = PTHREAD_MUTEX_INITIALIZER;
static pthread_cond_t g_stop_cond = PTHREAD_COND_INITIALIZER;
static int g_stop;

static unsigned long long now_us(void) {
  struct timespec ts;
  clock_gettime(CLOCK_REALTIME, &ts);
  return (unsigned long long)ts.tv_sec * 1000000ULL + (unsigned long long)ts.tv_nsec / 1000ULL;
}

static void* refresh_samples(void* unused) {
  (void)unused;
  pthread_mutex_lock(&g_stop_mu);
  while (!g_stop) {
    pthread_mutex_unlock(&g_stop_mu);
    pthread_mutex_lock(&g_mu);
    const unsigned long long now = now_us();
    for (int slot = 0; slot < g_slot_count; ++slot) {
      for (unsigned i = 0; i < g_slots[slot].sample_count; ++i) g_slots[slot].samples[i].timeStamp = now;
    }
    pthread_mutex_unlock(&g_mu);
    struct timespec until;
    clock_gettime(CLOCK_REALTIME, &until);
    until.tv_nsec += 50 * 1000 * 1000;
    if (until.tv_nsec >= 1000000000L) {
      until.tv_sec += 1;
      until.tv_nsec -= 1000000000L;
    }
    pthread_mutex_lock(&g_stop_mu);
    if (!g_stop) pthread_cond_timedwait(&g_stop_cond, &g_stop_mu, &until);
  }
  pthread_mutex_unlock(&g_stop_mu);
  return NULL;
}

static void bad_line(const char* file, int line_no, const char* line) {
  fprintf(stderr, "fake_nvml: %s:%d: cannot parse: %s", file, line_no, line);
  abort();
}

static void load_line(const char* file, int line_no, char* line) {
  char word[32], a[128], b[128];
  int slot = 0, n = 0;
  unsigned pid = 0, sm = 0, mem = 0, enc = 0, dec = 0;
  unsigned long long value = 0;
  if (sscanf(line, " %31s", word) != 1 || word[0] == '#') return;
  if (strcmp(word, "gpu") == 0 && sscanf(line, " gpu %127s %127s %n", a, b, &n) == 2 && n > 0) {
    char* name = line + n;
    name[strcspn(name, "\n")] = '\0';
    if (fake_nvml_add_gpu(a, name, b) < 0) bad_line(file, line_no, line);
  } else if (strcmp(word, "set") == 0 && sscanf(line, " set %d %127s %llu", &slot, a, &value) == 3) {
    if (fake_nvml_set(slot, a, value) != 0) bad_line(file, line_no, line);
  } else if (strcmp(word, "process") == 0 &&
             sscanf(line, " process %d %127s %u %llu", &slot, a, &pid, &value) == 4 &&
             (strcmp(a, "compute") == 0 || strcmp(a, "graphics") == 0)) {
    fake_nvml_add_process(slot, strcmp(a, "graphics") == 0, pid, value);
  } else if (strcmp(word, "sample") == 0 &&
             sscanf(line, " sample %d %u %u %u %u %u", &slot, &pid, &sm, &mem, &enc, &dec) == 6) {
    fake_nvml_add_process_sample(slot, pid, now_us(), sm, mem, enc, dec);
  } else {
    bad_line(file, line_no, line);
  }
}

__attribute__((constructor)) static void load_scenario(void) {
  const char* file = getenv("FAKE_NVML_SCENARIO");
  if (file == NULL || file[0] == '\0') return;
  FILE* in = fopen(file, "r");
  if (in == NULL) {
    fprintf(stderr, "fake_nvml: cannot open FAKE_NVML_SCENARIO %s\n", file);
    abort();
  }
  char line[512];
  int line_no = 0;
  while (fgets(line, sizeof(line), in) != NULL) load_line(file, ++line_no, line);
  fclose(in);
  g_refreshing = pthread_create(&g_refresher, NULL, refresh_samples, NULL) == 0;
}

__attribute__((destructor)) static void stop_refreshing(void) {
  if (!g_refreshing) return;
  pthread_mutex_lock(&g_stop_mu);
  g_stop = 1;
  pthread_cond_signal(&g_stop_cond);
  pthread_mutex_unlock(&g_stop_mu);
  pthread_join(g_refresher, NULL);
}
