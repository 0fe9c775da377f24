namespace StratoVirt.Qmp;

/// <summary>
/// The fixed parts of upstream's QMP command surface, as data: the answers to libvirt's probes (the same for every
/// microVM), the extra properties <c>device-list-properties</c> reports, and the upstream commands this machine does
/// not provide, with upstream's own microVM message where it has one.
/// </summary>
internal static class QmpCatalog
{
    /// <summary>Probe commands and their return values (JSON). Like upstream they ignore any arguments.</summary>
    public static readonly (string Name, string Return)[] Probes =
    [
        ("qom-list-types", """
            [{"name":"ioh3420","parent":"pcie-root-port-base"},{"name":"pcie-root-port","parent":"pcie-root-port-base"},
            {"name":"pcie-pci-bridge","parent":"base-pci-bridge"},{"name":"pci-bridge","parent":"base-pci-bridge"},
            {"name":"virtio-blk-pci-transitional","parent":"virtio-blk-pci-base"},{"name":"memory-backend-file","parent":"memory-backend"},
            {"name":"virtio-rng-device","parent":"virtio-device"},{"name":"rng-random","parent":"rng-backend"},
            {"name":"vfio-pci","parent":"pci-device"},{"name":"vhost-vsock-device","parent":"virtio-device"},
            {"name":"iothread","parent":"object"},{"name":"nec-usb-xhci","parent":"base-xhci"},
            {"name":"usb-tablet","parent":"usb-hid"},{"name":"usb-kbd","parent":"usb-hid"},
            {"name":"usb-consumer","parent":"usb-hid"},{"name":"usb-storage","parent":"usb-storage-dev"},
            {"name":"virtio-gpu-pci","parent":"virtio-gpu"}]
            """),
        ("query-tpm-models", "[]"),
        ("query-tpm-types", "[]"),
        ("query-command-line-options", """
            [{"parameters":[{"name":"discard","help":"discard operation (unmap|ignore)","type":"string"},
            {"name":"detect-zeroes","help":"optimize zero writes (unmap|on|off)","type":"string"}],"option":"drive"}]
            """),
        ("query-migrate-capabilities", "[]"),
        ("query-qmp-schema", "{}"),
        ("query-sev-capabilities", "{}"),
        ("query-chardev", "[]"),
        ("qom-list", "[]"),
        ("qom-get", "[]"),
        ("query-block", "[]"),
        ("query-named-block-nodes", "[]"),
        ("query-blockstats", "[]"),
        ("query-block-jobs", "[]"),
        ("query-gic-capabilities", "[]"),
        ("query-iothreads", "[]"),
    ];

    /// <summary>device-list-properties: every type has disable-legacy; a type whose name contains the key also
    /// has the listed property.</summary>
    public static readonly (string TypeContains, string Name, string Type)[] DeviceProperties =
    [
        ("", "disable-legacy", "OnOffAuto"),
        ("virtio-balloon", "deflate-on-oom", "bool"),
        ("virtio-blk", "num-queues", "uint16"),
    ];

    /// <summary>Upstream commands this microVM does not run, with upstream's microVM text where it has one
    /// (null: "&lt;name&gt; is not supported by this machine"). A command registered in the dispatcher's table
    /// (hotplug, reset, powerdown, q35's chardev-add/remove) takes precedence over its entry here.</summary>
    public static readonly Dictionary<string, string?> Unsupported = new(StringComparer.Ordinal)
    {
        ["chardev-add"] = "chardev_add not supported yet for microVM",
        ["chardev-remove"] = "chardev_remove not supported yet for microVM",
        ["cameradev_add"] = "cameradev_add not supported for MicroVM",
        ["cameradev_del"] = "cameradev_del not supported for MicroVM",
        ["query-vnc"] = "The service of VNC is not supported",
        ["query-display-image"] = "query-display-image is not supported",
        ["update_region"] = "The micro vm is not supported",
        ["human-monitor-command"] = "human-monitor-command is not supported yet",
        ["query-vcpu-reg"] = "query_vcpu_reg is not supported yet",
        ["query-mem-gpa"] = "query_mem_gpa is not supported yet",
        ["query-ohui-status"] = "query_ohui_status not supported for VM",
        ["query-workloads"] = "query_workloads not supported for VM",
        ["device_add"] = null,
        ["device_del"] = null,
        ["blockdev-add"] = null,
        ["blockdev-del"] = null,
        ["netdev_add"] = null,
        ["netdev_del"] = null,
        ["netdev_replace"] = null,
        ["netlink_set"] = null,
        ["set-viomem"] = null,
        ["get-viomem"] = null,
        ["switch-audio-record"] = null,
        ["migrate_cancel"] = null,
        ["block-commit"] = null,
        ["input_event"] = null,
        ["blockdev-snapshot-internal-sync"] = null,
        ["blockdev-snapshot-delete-internal-sync"] = null,
        ["trace-get-state"] = null,
        ["trace-set-state"] = null,
        ["detect-silent-audio"] = null,
    };
}
