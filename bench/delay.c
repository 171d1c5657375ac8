/* A loopback TCP proxy that adds a fixed round-trip time, for the benchmark's
 * network-shaped runs (netem needs privileges these machines do not give).
 *
 *   delay LISTEN_PORT TARGET_PORT RTT_MS
 *
 * Listens on 127.0.0.1:LISTEN_PORT and forwards every connection to
 * 127.0.0.1:TARGET_PORT. Each byte is delivered RTT/2 after it arrived, in
 * both directions, and a new connection carries nothing for its first RTT
 * (the TCP handshake a real network would cost). Prints "ready" once it
 * listens; runs until killed. Each connection's bytes keep their order; no
 * bandwidth limit. Single-threaded: one poll loop. */
#define _POSIX_C_SOURCE 200809L
#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <poll.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#define MAX_PAIRS 512
#define CHUNK 65536

typedef struct chunk {
  struct chunk *next;
  double due;   /* when it may be written */
  size_t len;   /* 0: the sender closed its side (shut down ours when due) */
  size_t done;
  char data[];
} chunk;

/* One direction: bytes read from `from`, waiting to be written to `to`. */
typedef struct {
  int from, to;
  int read_closed;
  int blocked; /* the last write would have blocked: wait for POLLOUT, not the clock */
  chunk *head, *tail;
} lane;

typedef struct {
  int used;
  double open_at; /* nothing moves before this: the simulated TCP handshake */
  lane up, down;  /* client -> server, server -> client */
} pair;

static pair pairs[MAX_PAIRS];
static double half_rtt, rtt;

static double now(void) {
  struct timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return ts.tv_sec + ts.tv_nsec / 1e9;
}

static void nonblocking(int fd) {
  int one = 1;
  fcntl(fd, F_SETFL, fcntl(fd, F_GETFL) | O_NONBLOCK);
  setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
}

static void lane_free(lane *l) {
  while (l->head) {
    chunk *c = l->head;
    l->head = c->next;
    free(c);
  }
  l->tail = NULL;
}

static void pair_close(pair *p) {
  close(p->up.from);
  close(p->up.to);
  lane_free(&p->up);
  lane_free(&p->down);
  memset(p, 0, sizeof *p);
}

static int connect_target(int port) {
  struct sockaddr_in addr;
  int fd = socket(AF_INET, SOCK_STREAM, 0);
  if (fd < 0) return -1;
  memset(&addr, 0, sizeof addr);
  addr.sin_family = AF_INET;
  addr.sin_port = htons((unsigned short)port);
  addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  if (connect(fd, (struct sockaddr *)&addr, sizeof addr) != 0) {
    close(fd);
    return -1;
  }
  return fd;
}

/* Reads what `l->from` has and queues it; 0 when the lane should end. */
static int lane_read(pair *p, lane *l) {
  chunk *c = malloc(sizeof *c + CHUNK);
  ssize_t n;
  double start = now();
  if (c == NULL) return 0;
  n = read(l->from, c->data, CHUNK);
  if (n < 0 && (errno == EAGAIN || errno == EINTR)) {
    free(c);
    return 1;
  }
  c->next = NULL;
  c->len = n > 0 ? (size_t)n : 0;
  c->done = 0;
  c->due = (start > p->open_at ? start : p->open_at) + half_rtt;
  if (n <= 0) l->read_closed = 1;
  if (l->tail) l->tail->next = c; else l->head = c;
  l->tail = c;
  return 1;
}

/* Writes what is due; 0 when the pair should close. */
static int lane_write(lane *l, double t) {
  l->blocked = 0;
  while (l->head && l->head->due <= t) {
    chunk *c = l->head;
    if (c->len == 0) {
      shutdown(l->to, SHUT_WR);
    } else {
      ssize_t n = write(l->to, c->data + c->done, c->len - c->done);
      if (n < 0) {
        l->blocked = errno == EAGAIN;
        return errno == EAGAIN || errno == EINTR;
      }
      c->done += (size_t)n;
      if (c->done < c->len) {
        l->blocked = 1;
        return 1;
      }
    }
    l->head = c->next;
    if (!l->head) l->tail = NULL;
    free(c);
  }
  return 1;
}

int main(int argc, char **argv) {
  int listener, one = 1, target;
  struct sockaddr_in addr;
  if (argc != 4) {
    fprintf(stderr, "usage: delay LISTEN_PORT TARGET_PORT RTT_MS\n");
    return 2;
  }
  target = atoi(argv[2]);
  rtt = atof(argv[3]) / 1000.0;
  half_rtt = rtt / 2;
  listener = socket(AF_INET, SOCK_STREAM, 0);
  setsockopt(listener, SOL_SOCKET, SO_REUSEADDR, &one, sizeof one);
  memset(&addr, 0, sizeof addr);
  addr.sin_family = AF_INET;
  addr.sin_port = htons((unsigned short)atoi(argv[1]));
  addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  if (bind(listener, (struct sockaddr *)&addr, sizeof addr) != 0 || listen(listener, 1024) != 0) {
    perror("delay: listen");
    return 1;
  }
  nonblocking(listener);
  printf("ready\n");
  fflush(stdout);
  for (;;) {
    struct pollfd fds[1 + 4 * MAX_PAIRS];
    int owner[1 + 4 * MAX_PAIRS];
    nfds_t n = 1;
    int i, timeout = -1;
    double t = now(), next = -1;
    fds[0].fd = listener;
    fds[0].events = POLLIN;
    for (i = 0; i < MAX_PAIRS; i++) {
      pair *p = &pairs[i];
      lane *lanes[2];
      int k;
      if (!p->used) continue;
      lanes[0] = &p->up;
      lanes[1] = &p->down;
      for (k = 0; k < 2; k++) {
        lane *l = lanes[k];
        fds[n].fd = l->from;
        fds[n].events = (short)(l->read_closed ? 0 : POLLIN);
        owner[n++] = i;
        if (l->blocked) { /* the other side's writability, not the clock */
          fds[n].fd = l->to;
          fds[n].events = POLLOUT;
          owner[n++] = i;
        } else if (l->head && (next < 0 || l->head->due < next)) {
          next = l->head->due;
        }
      }
    }
    if (next >= 0) timeout = next <= t ? 0 : (int)((next - t) * 1000) + 1;
    if (poll(fds, n, timeout) < 0 && errno != EINTR) {
      perror("delay: poll");
      return 1;
    }
    if (fds[0].revents & POLLIN) {
      int client;
      while ((client = accept(listener, NULL, NULL)) >= 0) {
        int server = connect_target(target);
        for (i = 0; i < MAX_PAIRS && pairs[i].used; i++) {}
        if (server < 0 || i == MAX_PAIRS) {
          close(client);
          if (server >= 0) close(server);
          continue;
        }
        nonblocking(client);
        nonblocking(server);
        pairs[i].used = 1;
        pairs[i].open_at = now() + rtt;
        pairs[i].up.from = client;
        pairs[i].up.to = server;
        pairs[i].down.from = server;
        pairs[i].down.to = client;
      }
    }
    for (nfds_t f = 1; f < n; f++) {
      pair *p = &pairs[owner[f]];
      lane *l;
      if (!p->used || !(fds[f].events & POLLIN) || !(fds[f].revents & (POLLIN | POLLHUP | POLLERR))) continue;
      l = fds[f].fd == p->up.from ? &p->up : &p->down;
      if (!l->read_closed && !lane_read(p, l)) pair_close(p);
    }
    t = now();
    for (i = 0; i < MAX_PAIRS; i++) {
      pair *p = &pairs[i];
      if (!p->used) continue;
      if (!lane_write(&p->up, t) || !lane_write(&p->down, t)) {
        pair_close(p);
        continue;
      }
      if (p->up.read_closed && p->down.read_closed && !p->up.head && !p->down.head) pair_close(p);
    }
  }
}
