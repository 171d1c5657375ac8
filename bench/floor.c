/* The floor: the same GETs as the Lua clients, from C, with one reused libcurl
 * easy handle (so one kept-alive connection) and the body collected into a
 * reused buffer. Nothing is parsed: this is what libcurl alone costs.
 *
 *   floor URL COUNT   ->  prints "seconds=... cpu=... count=... rss_kb=..."
 */
#define _POSIX_C_SOURCE 200809L
#include <curl/curl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

typedef struct {
  char *data;
  size_t len, cap;
} buffer;

static size_t on_body(char *data, size_t size, size_t count, void *userdata) {
  buffer *b = userdata;
  size_t n = size * count;
  if (b->len + n > b->cap) {
    size_t cap = b->cap ? b->cap * 2 : 16384;
    char *grown;
    while (cap < b->len + n) cap *= 2;
    grown = realloc(b->data, cap);
    if (grown == NULL) return 0;
    b->data = grown;
    b->cap = cap;
  }
  memcpy(b->data + b->len, data, n);
  b->len += n;
  return n;
}

static double clock_seconds(clockid_t id) {
  struct timespec ts;
  clock_gettime(id, &ts);
  return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

static long peak_rss_kb(void) {
  char line[256];
  long kb = -1;
  FILE *status = fopen("/proc/self/status", "r");
  if (status == NULL) return -1;
  while (fgets(line, sizeof line, status) != NULL) {
    if (strncmp(line, "VmHWM:", 6) == 0) kb = strtol(line + 6, NULL, 10);
  }
  fclose(status);
  return kb;
}

int main(int argc, char **argv) {
  struct curl_slist *headers = NULL;
  buffer body = {NULL, 0, 0};
  CURL *curl;
  long count, i, status = 0;
  double started, cpu_started;

  if (argc != 3 || (count = strtol(argv[2], NULL, 10)) < 1) {
    fprintf(stderr, "usage: floor URL COUNT\n");
    return 2;
  }
  curl_global_init(CURL_GLOBAL_DEFAULT);
  curl = curl_easy_init();
  if (curl == NULL) return 1;
  /* The request the module sends: bearer token, Accept, no Expect. */
  headers = curl_slist_append(headers, "Authorization: Bearer sntryu_"
                                       "aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa");
  headers = curl_slist_append(headers, "Accept: application/json");
  headers = curl_slist_append(headers, "Expect:");
  curl_easy_setopt(curl, CURLOPT_URL, argv[1]);
  curl_easy_setopt(curl, CURLOPT_HTTPHEADER, headers);
  curl_easy_setopt(curl, CURLOPT_USERAGENT, "floor/1");
  curl_easy_setopt(curl, CURLOPT_NOSIGNAL, 1L);
  curl_easy_setopt(curl, CURLOPT_TIMEOUT, 10L);
  curl_easy_setopt(curl, CURLOPT_WRITEFUNCTION, on_body);
  curl_easy_setopt(curl, CURLOPT_WRITEDATA, (void *)&body);

  started = clock_seconds(CLOCK_MONOTONIC);
  cpu_started = clock_seconds(CLOCK_PROCESS_CPUTIME_ID);
  for (i = 0; i < count; i++) {
    CURLcode rc;
    body.len = 0;
    rc = curl_easy_perform(curl);
    if (rc != CURLE_OK) {
      fprintf(stderr, "floor: request %ld: %s\n", i + 1, curl_easy_strerror(rc));
      return 1;
    }
    curl_easy_getinfo(curl, CURLINFO_RESPONSE_CODE, &status);
    if (status != 200 || body.len == 0) {
      fprintf(stderr, "floor: request %ld: status %ld, %lu bytes\n", i + 1, status,
              (unsigned long)body.len);
      return 1;
    }
  }
  printf("seconds=%.6f cpu=%.6f count=%ld rss_kb=%ld\n", clock_seconds(CLOCK_MONOTONIC) - started,
         clock_seconds(CLOCK_PROCESS_CPUTIME_ID) - cpu_started, count, peak_rss_kb());
  curl_slist_free_all(headers);
  curl_easy_cleanup(curl);
  curl_global_cleanup();
  free(body.data);
  return 0;
}
