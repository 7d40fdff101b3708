#!/usr/bin/env python3
"""Writes the seed corpus of every fuzz target into test/fuzz/corpus/<target>/.

Seeds are valid, typical inputs (what a kubelet, a device owner or an operator writes), so that
fuzzing starts from deep in each parser. Inputs that once failed are kept beside them under
names starting with "regression-"; this script never touches those. pod_resources_view's
protobuf seeds are encoded with protoc from the text form below.

  test/fuzz/make_seeds.py        # from the repository root; needs protoc
"""
import os
import pathlib
import subprocess

ROOT = pathlib.Path(__file__).resolve().parents[2]
CORPUS = ROOT / "test" / "fuzz" / "corpus"
PROTO_DIR = ROOT / "proto"
PROTO = "podresources/v1/api.proto"
CRI_PROTO = "cri/v1/api.proto"
CGROUP_FIXTURES = ROOT / "test" / "kubelet" / "testdata" / "cgroup"

TEXT_SEEDS = {
    "prometheus_text": {
        "gauges": "devscope_device_utilization_ratio 0.25\ndevscope_device_temperature_celsius 61\n",
        "typed": (
            "# HELP devscope_device_widget_ops_total Operations the widget completed.\n"
            "# TYPE devscope_device_widget_ops_total counter\n"
            'devscope_device_widget_ops_total{queue="0"} 1027\n'
            'devscope_device_widget_ops_total{queue="1",kind="read \\"fast\\"\\\\\\n"} 3.5e+06\n'
            "# TYPE devscope_device_memory_used_bytes gauge\n"
            "devscope_device_memory_used_bytes NaN\n"
            "devscope_device_power_watts +Inf\r\n"
            "# a comment\n"
        ),
        "errors": (
            'devscope_device_x{device="a"} 1\nnode_load1 3\ndevscope_device_y{a="1",a="2"} 1\n'
            "devscope_device_z 1 1700000000\ndevscope_device_z 2\n"
        ),
    },
    "devicedir_info": {
        "full": "# written by the widget agent\nvendor=Example Corp\nmodel=Widget 3000\n"
                "serial=WX-0042\npci_address=3b:00.0\nuuid=WID-8a1f-77\n",
        "odd": "vendor = spaced\n=novalue\nno equals\nunknown_key=kept quiet\n\n",
    },
    "devicedir_allocate": {
        "all_items": "device /dev/widget0\ndevice /dev/widget0 /dev/w0 rw\ndevice /dev/wctl /dev/wctl rwm\n"
                     "env WIDGET_VISIBLE_DEVICES=0\nmount /opt/widget/lib /usr/local/widget ro\n"
                     "mount /var/run/widget /run/widget\nannotation example.com/widget=w0\n"
                     "cdi example.com/widget=w0\n# comment\n\n",
        "bad_items": "device relative/path\ndevice /dev/x /dev/x rwx\nmount /a\nenv NOEQ\ncdi nope\nfrobnicate\n",
    },
    "devicedir_health": {"healthy": "Healthy\n", "unhealthy": "unhealthy", "empty": "", "other": "degraded\n"},
    "devicedir_resource": {"good": "example.com/widget\n", "bad": "example.com/wid get", "no_domain": "widget"},
    "devicedir_numa_node": {"zero": "0\n", "none": "-1\n", "bad": "one\n", "big": "9223372036854775807"},
    "attribute_reader": {"int": "42\n", "float": "1.5e3", "spaced": "  7  \n", "hex": "0x1f\n", "text": "N/A\n"},
    "config": {
        "full": (
            "collectors:\n  interval: 5s\n  stale_after: 1m\n  nvml:\n    library: libnvidia-ml.so.1\n"
            '    advertise: ""\n    ignored_xids: [13, 31, 43, 45, 68]\n    xid_recovery: 10m\n'
            "    mig_minors_file: /proc/driver/nvidia-caps/mig-minors\n  drm:\n    advertise: example.com/gpu\n"
            "  netdev:\n    advertise: \"\"\nhealth:\n  max_temperature_celsius: 90\n"
            "device_plugin:\n  plugins_registry_dir: /var/lib/kubelet/plugins_registry\n  resources:\n"
            '    "example.com/widget":\n      allocation_policy: spread\n      pre_start_container: true\n'
        ),
        "bad_key": "collectors:\n  intervall: 5s\n",
        "bad_value": "collectors:\n  nvml:\n    ignored_xids: seven\n    xid_recovery: 0\n",
        "anchors": "base: &b {interval: 1s}\ncollectors: *b\n",
    },
    "web_config": {
        "auth": "basic_auth_users:\n  prometheus: $2y$10$X0h1p1CNvxYpZ0o1nAxmK.y7hQQ6mG7sNDVRb/8iOQm2r1tBxQW1W\n",
        "tls": (
            "tls_server_config:\n  cert_file: server.crt\n  key_file: server.key\n  client_ca_file: ca.crt\n"
            "  client_auth_type: RequireAndVerifyClientCert\n  min_version: TLS12\n  max_version: TLS13\n"
            "  cipher_suites: [TLS_ECDHE_RSA_WITH_AES_128_GCM_SHA256]\n  curve_preferences: [X25519, CurveP256]\n"
            "  prefer_server_cipher_suites: true\n"
        ),
        "headers": "http_server_config:\n  headers:\n    Strict-Transport-Security: max-age=31536000\n"
                   "    X-Frame-Options: deny\n",
        "bad": "basic_auth_users:\n  - not a map\nunknown: 1\n",
    },
}

LIST_TEXT = """
pod_resources {
  name: "trainer-0" namespace: "ml"
  containers {
    name: "main"
    devices { resource_name: "example.com/widget" device_ids: "w0" device_ids: "GPU-8a1f::3"
              topology { nodes { ID: 0 } } }
    devices { resource_name: "nvidia.com/gpu" device_ids: "3B:00.0" device_ids: "card1-2" }
    cpu_ids: 2 cpu_ids: 3 cpu_ids: 4 cpu_ids: 9
    memory { memory_type: "hugepages-1Gi" size: 2147483648 topology { nodes { ID: 0 } nodes { ID: 1 } } }
    dynamic_resources { claim_name: "gpu-claim" claim_namespace: "ml"
      claim_resources { driver_name: "gpu.example.com" pool_name: "node-a" device_name: "gpu-0"
                        share_id: "s1" cdi_devices { name: "example.com/gpu=gpu0" } } }
  }
  containers { name: "sidecar" devices { resource_name: "example.com/widget" device_ids: "w0" } }
  cpu_ids: 11
  memory { memory_type: "memory" size: 1073741824 }
}
pod_resources { name: "idle" namespace: "default" containers { name: "c" } }
"""

ALLOCATABLE_TEXT = """
devices { resource_name: "example.com/widget" device_ids: "w0" device_ids: "w1" topology { nodes { ID: 0 } } }
devices { resource_name: "nvidia.com/gpu" device_ids: "GPU-8a1f" }
cpu_ids: 2 cpu_ids: 3 cpu_ids: 4 cpu_ids: 5 cpu_ids: 9 cpu_ids: 11
memory { memory_type: "memory" size: 68719476736 topology { nodes { ID: 0 } } }
memory { memory_type: "memory" size: 68719476736 topology { nodes { ID: 0 } } }
"""

DEVICES = [
    ("devicedir", "w0", "example.com/widget\n", "Healthy\n", "0\n",
     "vendor=Example Corp\nmodel=Widget 3000\npci_address=0000:3b:00.0\n",
     '# TYPE devscope_device_widget_ops_total counter\ndevscope_device_widget_ops_total{queue="0"} 7\n'
     "devscope_device_utilization_ratio 0.5\n"),
    ("drm", "card1", "example.com/gpu\n", "unhealthy\n", "-1\n", "uuid=GPU-8a1f\n",
     'devscope_device_errors_total{kind="ecc"} 0\n'),
]


def encode(message, text, proto=PROTO, package="v1"):
    return subprocess.run(
        ["protoc", f"--proto_path={PROTO_DIR}", f"--encode={package}.{message}", proto],
        input=text.encode(), capture_output=True, check=True, cwd=ROOT).stdout


def cri_container(id_char, namespace, pod, container, name=None):
    labels = "".join(f'labels {{ key: "{k}" value: "{v}" }} ' for k, v in (
        ("io.kubernetes.pod.namespace", namespace), ("io.kubernetes.pod.name", pod),
        ("io.kubernetes.container.name", container)) if v is not None)
    metadata = f'metadata {{ name: "{name}" }} ' if name else ""
    return f'containers {{ id: "{id_char * 64}" {metadata}state: CONTAINER_RUNNING {labels}}}\n'


CRI_REPLY_TEXT = (
    cri_container("a", "ml", "trainer-0", "main")
    + cri_container("b", "ml", "infer-1", None, name="server")  # no container label: metadata
    + cri_container("c", None, None, None, name="not-the-kubelets")  # skipped
)
CRI_ODD_TEXT = (
    cri_container("d", "ml", "duplicate-id", "earlier")  # the later duplicate replaces it
    + cri_container("d", 'q\\"uote', "new\\nline", "back\\\\slash")
    + cri_container("e", "", "no-namespace", "")
)
GPU_LIST_TEXT = """
pod_resources { name: "trainer-0" namespace: "ml"
  containers { name: "main" devices { resource_name: "nvidia.com/gpu" device_ids: "gpu0" } } }
pod_resources { name: "infer-1" namespace: "ml"
  containers { name: "server" devices { resource_name: "nvidia.com/gpu" device_ids: "gpu0" } } }
"""


def fdp_tail(values):
    """FuzzedDataProvider integers, (value - min, bytes) in the order consumed, as the input's end."""
    consumed = b"".join(v.to_bytes(n, "big") for v, n in values)
    return consumed[::-1]


def holder_tail(processes, device_values):
    """processes: (pid, memory or None, [4 ratios or None], container index); device_values: 5
    values or None (memory in bytes, then ratios)."""
    values = [(len(processes), 1)]
    for pid, memory, ratios, which in processes:
        values.append((pid - 1, 1))
        values += [(1, 1), (memory, 6)] if memory is not None else [(0, 1)]
        for r in ratios:
            values += [(1, 1), (min(int(r * 2**64), 2**64 - 1), 8)] if r is not None else [(0, 1)]
        values.append((which, 1))
    for q, v in enumerate(device_values):
        if v is None:
            values.append((0, 1))
        elif q == 0:
            values += [(1, 1), (v, 6)]
        else:
            values += [(1, 1), (min(int(v * 2**64), 2**64 - 1), 8)]
    return fdp_tail(values)


def fdp_string(data):
    """One string as FuzzedDataProvider.ConsumeRandomLengthString reads it."""
    return data.replace(b"\\", b"\\\\") + b"\\ "


def view_state(list_bytes, allocatable_bytes, devices):
    out = fdp_string(list_bytes) + fdp_string(allocatable_bytes)
    for device in devices:
        out += b"".join(fdp_string(field.encode()) for field in device)
    return out + fdp_string(b"")  # the end of the device list


def write(target, name, data):
    directory = CORPUS / target
    directory.mkdir(parents=True, exist_ok=True)
    (directory / f"seed-{name}").write_bytes(data if isinstance(data, bytes) else data.encode())


def main():
    for target, seeds in TEXT_SEEDS.items():
        for name, text in seeds.items():
            write(target, name, text)
    list_bytes = encode("ListPodResourcesResponse", LIST_TEXT)
    allocatable_bytes = encode("AllocatableResourcesResponse", ALLOCATABLE_TEXT)
    full = view_state(list_bytes, allocatable_bytes, DEVICES)
    one_pod = encode("ListPodResourcesResponse", LIST_TEXT.split("pod_resources { name: \"idle\"")[0])
    write("pod_resources_view", "full", full)
    write("pod_resources_view", "full_then_one_pod",
          full + view_state(one_pod, allocatable_bytes, DEVICES[:1]))
    write("pod_resources_view", "empty_then_full", view_state(b"", b"", []) + full)
    write("pod_resources_view", "pods_only", view_state(list_bytes, b"", []))

    for fixture in sorted(CGROUP_FIXTURES.glob("*.txt")):
        write("process_cgroup", fixture.stem, fixture.read_bytes())
    reply = encode("ListContainersResponse", CRI_REPLY_TEXT, CRI_PROTO, "runtime.v1")
    odd = encode("ListContainersResponse", CRI_ODD_TEXT, CRI_PROTO, "runtime.v1")
    gpu_list = encode("ListPodResourcesResponse", GPU_LIST_TEXT)
    gib = 1 << 30
    sharing = [(1, 3 * gib, [0.25, 0.1, None, None], 0), (2, gib, [0.5, 0.2, 0.3, 0.0], 1),
               (3, gib, [0.05, None, None, None], 3), (4, gib // 2, [0.1, 0.0, None, None], 0)]
    write("container_runtime_reply", "two_pods_sharing",
          fdp_string(reply) + fdp_string(gpu_list)
          + holder_tail(sharing, [8 * gib, 0.95, 0.4, 0.3, 0.0]))
    write("container_runtime_reply", "overcommitted",  # processes add up to more than the device
          fdp_string(reply) + fdp_string(b"")
          + holder_tail(sharing, [2 * gib, 0.5, 0.1, None, None]))
    write("container_runtime_reply", "odd_labels",
          fdp_string(odd) + fdp_string(gpu_list)
          + holder_tail([(5, gib, [0.5] * 4, 0), (6, gib, [0.25] * 4, 2)],
                        [4 * gib, 1.0, 1.0, 1.0, 1.0]))
    write("container_runtime_reply", "empty", fdp_string(b"") + fdp_string(b"") + bytes(8))

if __name__ == "__main__":
    os.chdir(ROOT)
    main()
