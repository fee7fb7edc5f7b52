/* Runs a command under a seccomp allow-list the way systemd applies SystemCallFilter= (test/deploy/systemd-unit.test.ts). */
#include <errno.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <sys/prctl.h>
typedef void *scmp_filter_ctx;
extern scmp_filter_ctx seccomp_init(uint32_t def_action);
extern int seccomp_rule_add(scmp_filter_ctx ctx, uint32_t action, int syscall, unsigned int arg_cnt, ...);
extern int seccomp_syscall_resolve_name(const char *name);
extern int seccomp_load(scmp_filter_ctx ctx);
#define ACT_KILL_PROCESS 0x80000000U
#define ACT_ALLOW 0x7fff0000U
#define ACT_ERRNO(x) (0x00050000U | ((x) & 0x0000ffffU))
int main(int argc, char **argv) {
  if (argc < 4) { fprintf(stderr, "usage: launch ALLOWED-FILE kill|ERRNO COMMAND...\n"); return 2; }
  uint32_t deny = strcmp(argv[2], "kill") == 0 ? ACT_KILL_PROCESS : ACT_ERRNO(atoi(argv[2]));
  scmp_filter_ctx ctx = seccomp_init(deny);
  if (ctx == NULL) { fprintf(stderr, "seccomp_init failed\n"); return 2; }
  FILE *f = fopen(argv[1], "r");
  if (f == NULL) { perror(argv[1]); return 2; }
  char line[128];
  while (fgets(line, sizeof line, f) != NULL) {
    line[strcspn(line, "\r\n")] = 0;
    if (line[0] == 0) continue;
    int nr = seccomp_syscall_resolve_name(line);
    if (nr < 0) continue; /* not a syscall of this architecture */
    if (seccomp_rule_add(ctx, ACT_ALLOW, nr, 0) != 0) { fprintf(stderr, "seccomp_rule_add %s failed\n", line); return 2; }
  }
  fclose(f);
  if (prctl(PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0) != 0) { perror("prctl"); return 2; }
  if (seccomp_load(ctx) != 0) { fprintf(stderr, "seccomp_load failed\n"); return 2; }
  execvp(argv[3], argv + 3);
  perror(argv[3]);
  return 127;
}
