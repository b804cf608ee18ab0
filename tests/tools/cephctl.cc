// cairn-cephctl: sends one monitor command (JSON, as the `ceph` CLI sends it) to a Ceph cluster
// through librados and prints the monitor's answer. scripts/ceph-cluster.sh uses it where the
// Python `ceph` CLI is not installed (a machine that carries only the daemons' binaries); the
// few commands a test cluster needs (osd new, osd pool create, osd pool get, osd pool
// application enable) are monitor commands, so no manager is needed for them.
//
// usage: cairn-cephctl CEPH_CONF COMMAND_JSON
// Exit status 0 when the monitor accepted the command; its status text goes to stderr.
#include <rados/librados.h>

#include <cerrno>
#include <cstdio>
#include <cstring>
#include <string>

int main(int argc, char** argv) {
  if (argc != 3) {
    std::fprintf(stderr, "usage: cairn-cephctl CEPH_CONF COMMAND_JSON\n");
    return 2;
  }
  rados_t cluster = nullptr;
  int r = rados_create2(&cluster, "ceph", "client.admin", 0);
  if (r == 0) r = rados_conf_read_file(cluster, argv[1]);
  if (r == 0) r = rados_conf_set(cluster, "rados_mon_op_timeout", "60");
  if (r == 0) r = rados_conf_set(cluster, "client_mount_timeout", "60");
  if (r == 0) r = rados_connect(cluster);
  if (r < 0) {
    std::fprintf(stderr, "cairn-cephctl: cannot connect with %s: %s\n", argv[1], std::strerror(-r));
    if (cluster) rados_shutdown(cluster);
    return 1;
  }
  const char* cmd[] = {argv[2]};
  char* out = nullptr;
  size_t out_len = 0;
  char* status = nullptr;
  size_t status_len = 0;
  r = rados_mon_command(cluster, cmd, 1, "", 0, &out, &out_len, &status, &status_len);
  if (out_len > 0) std::fwrite(out, 1, out_len, stdout);
  if (status_len > 0) {
    std::fwrite(status, 1, status_len, stderr);
    std::fputc('\n', stderr);
  }
  if (out) rados_buffer_free(out);
  if (status) rados_buffer_free(status);
  rados_shutdown(cluster);
  if (r < 0) {
    std::fprintf(stderr, "cairn-cephctl: %s: %s\n", argv[2], std::strerror(-r));
    return 1;
  }
  return 0;
}
