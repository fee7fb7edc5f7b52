/*
 * nfq-delay: hold every packet of one NFQUEUE for a fixed time, then accept it.
 *
 * This kernel has no netem, so the fleet test bed emulates link latency with this
 * program on the bridge's FORWARD path (iptables ... -j NFQUEUE --queue-num Q in the
 * switch namespace, with bridge-nf-call-iptables=1). Delaying at the sending host
 * instead would cap TCP near 1 MB/s: TCP small queues count the held bytes against
 * the socket, which never happens once the packet has crossed the veth.
 *
 *   nfq-delay --queue Q --delay-us D [--maxlen N]
 *
 * Prints "ready" on stdout once bound (install the iptables rule only after that:
 * without a listener the queue drops every packet), and counters on stderr at exit
 * (SIGTERM or SIGINT).
 *
 * Every packet gets the same delay, so packets leave in arrival order; the kernel
 * numbers queued packets in arrival order too, so one batch verdict ("accept all ids
 * up to N") releases every packet that is due with a single message.
 *
 * Build: gcc -O2 -o nfq-delay nfq-delay.c -lnetfilter_queue -lnfnetlink
 * (Debian: libnetfilter-queue-dev)
 */
#define _GNU_SOURCE
#include <errno.h>
#include <poll.h>
#include <signal.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>
#include <sys/socket.h>
#include <arpa/inet.h>
#include <linux/netfilter.h>
#include <libnetfilter_queue/libnetfilter_queue.h>

/* Enough for a 10 Gbit/s fleet at 1 s of delay in 64 KiB GSO packets; memory is 16 B a slot. */
#define RING_SLOTS (1u << 20)
#define DEFAULT_MAXLEN 65536u
/* The kernel drops what does not fit in the socket buffer; metadata-only messages are small. */
#define RCVBUF_BYTES (32 * 1024 * 1024)

struct slot { uint32_t id; uint64_t due_ns; };

static struct slot *ring;
static uint32_t ring_head, ring_tail; /* head: oldest; tail: next free */
static uint64_t delay_ns;
static volatile sig_atomic_t stopping;
static unsigned long long n_queued, n_released, n_ring_full;

static uint64_t now_ns (void) {
  struct timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return (uint64_t)ts.tv_sec * 1000000000ull + (uint64_t)ts.tv_nsec;
}

static int on_packet (struct nfq_q_handle *qh, struct nfgenmsg *msg, struct nfq_data *nfa, void *data) {
  (void)msg; (void)data;
  struct nfqnl_msg_packet_hdr *ph = nfq_get_msg_packet_hdr(nfa);
  if (ph == NULL) return 0;
  uint32_t id = ntohl(ph->packet_id);
  if (ring_tail - ring_head >= RING_SLOTS) {
    /* Cannot hold it: release everything up to it now rather than lose order. */
    n_ring_full++;
    nfq_set_verdict_batch(qh, id, NF_ACCEPT);
    ring_head = ring_tail;
    return 0;
  }
  ring[ring_tail % RING_SLOTS] = (struct slot){ id, now_ns() + delay_ns };
  ring_tail++;
  n_queued++;
  return 0;
}

static void on_signal (int sig) { (void)sig; stopping = 1; }

static void usage (void) {
  fprintf(stderr, "usage: nfq-delay --queue Q --delay-us D [--maxlen N]\n");
  exit(2);
}

int main (int argc, char **argv) {
  long queue = -1, delay_us = -1;
  unsigned long maxlen = DEFAULT_MAXLEN;
  for (int i = 1; i < argc; i++) {
    if (strcmp(argv[i], "--queue") == 0 && i + 1 < argc) queue = strtol(argv[++i], NULL, 10);
    else if (strcmp(argv[i], "--delay-us") == 0 && i + 1 < argc) delay_us = strtol(argv[++i], NULL, 10);
    else if (strcmp(argv[i], "--maxlen") == 0 && i + 1 < argc) maxlen = strtoul(argv[++i], NULL, 10);
    else usage();
  }
  if (queue < 0 || queue > 65535 || delay_us < 0) usage();
  delay_ns = (uint64_t)delay_us * 1000ull;

  ring = calloc(RING_SLOTS, sizeof *ring);
  if (ring == NULL) { perror("calloc"); return 1; }

  struct sigaction sa = { 0 };
  sa.sa_handler = on_signal;
  sigaction(SIGTERM, &sa, NULL);
  sigaction(SIGINT, &sa, NULL);

  struct nfq_handle *h = nfq_open();
  if (h == NULL) { perror("nfq_open"); return 1; }
  /* Needed on kernels before 3.8 only; harmless (and failing) on newer ones. */
  nfq_unbind_pf(h, AF_INET);
  nfq_bind_pf(h, AF_INET);
  struct nfq_q_handle *qh = nfq_create_queue(h, (uint16_t)queue, &on_packet, NULL);
  if (qh == NULL) { perror("nfq_create_queue"); return 1; }
  /* Metadata only: the verdict carries no payload, so the kernel keeps the original packet. */
  if (nfq_set_mode(qh, NFQNL_COPY_META, 0) < 0) { perror("nfq_set_mode"); return 1; }
  if (nfq_set_queue_maxlen(qh, (uint32_t)maxlen) < 0) perror("nfq_set_queue_maxlen");
  /* GSO: take large segments whole instead of making the kernel split them for us. */
  if (nfq_set_queue_flags(qh, NFQA_CFG_F_GSO, NFQA_CFG_F_GSO) < 0) perror("nfq_set_queue_flags");

  int fd = nfq_fd(h);
  int rcvbuf = RCVBUF_BYTES;
  if (setsockopt(fd, SOL_SOCKET, SO_RCVBUFFORCE, &rcvbuf, sizeof rcvbuf) < 0) nfnl_rcvbufsiz(nfq_nfnlh(h), RCVBUF_BYTES);
  int one = 1;
  /* On overrun keep going: the kernel dropped those packets, which is loss, not a reason to stop. */
  setsockopt(fd, SOL_NETLINK, NETLINK_NO_ENOBUFS, &one, sizeof one);

  printf("ready\n");
  fflush(stdout);

  static char buf[65536] __attribute__((aligned));
  while (!stopping) {
    struct timespec timeout, *tp = NULL;
    if (ring_head != ring_tail) {
      uint64_t due = ring[ring_head % RING_SLOTS].due_ns, now = now_ns();
      uint64_t wait = due > now ? due - now : 0;
      timeout.tv_sec = (time_t)(wait / 1000000000ull);
      timeout.tv_nsec = (long)(wait % 1000000000ull);
      tp = &timeout;
    }
    struct pollfd pfd = { .fd = fd, .events = POLLIN };
    int ready = ppoll(&pfd, 1, tp, NULL);
    if (ready < 0 && errno != EINTR) { perror("ppoll"); break; }
    if (ready > 0) {
      /* Bounded so that a flood of arrivals cannot starve the releases below. */
      for (int reads = 0; reads < 256; reads++) {
        ssize_t n = recv(fd, buf, sizeof buf, MSG_DONTWAIT);
        if (n < 0) {
          if (errno == EAGAIN || errno == EWOULDBLOCK || errno == EINTR) break;
          if (errno == ENOBUFS) continue;
          perror("recv");
          break;
        }
        nfq_handle_packet(h, buf, (int)n);
      }
    }
    /* Release every packet that is due with one batch verdict on the newest of them. */
    uint64_t now = now_ns();
    uint32_t last = 0;
    int any = 0;
    while (ring_head != ring_tail && ring[ring_head % RING_SLOTS].due_ns <= now) {
      last = ring[ring_head % RING_SLOTS].id;
      ring_head++;
      n_released++;
      any = 1;
    }
    if (any && nfq_set_verdict_batch(qh, last, NF_ACCEPT) < 0) perror("nfq_set_verdict_batch");
  }

  /* Packets still held are dropped with the queue: the bed is being torn down anyway. */
  fprintf(stderr, "{\"queued\":%llu,\"released\":%llu,\"ringFull\":%llu,\"heldAtExit\":%u}\n",
    n_queued, n_released, n_ring_full, ring_tail - ring_head);
  nfq_destroy_queue(qh);
  nfq_close(h);
  return 0;
}
