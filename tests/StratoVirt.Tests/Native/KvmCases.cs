namespace StratoVirt.Tests.Native;

/// <summary>
/// One run of stratovirt that needs a working /dev/kvm. Arguments may name payloads as "{payload:hello.bin}";
/// they resolve to the host's build of the payloads, or to /lab/ inside the nested lab.
/// </summary>
public sealed record VmmCase(string Name, string[] Args, int TimeoutSeconds = 30, bool WithInfoLog = false,
    Func<string, string>? Wrap = null);

/// <summary>Every KVM-backed payload run the tests assert on; the lab runs them all in one boot.</summary>
public static class KvmCases
{
    private static string[] Boot(string payload, params string[] extra) =>
        ["-machine", "microvm", "-kernel", $"{{payload:{payload}}}", "-serial", "stdio", .. extra];

    public static readonly VmmCase[] All =
    [
        new("hello-bin", Boot("hello.bin", "-m", "256", "-D"), WithInfoLog: true),
        new("hello-bzimage", Boot("hello.bzImage", "-D"), WithInfoLog: true),
        new("hello-elf", Boot("hello.elf")),
        new("rtc", Boot("rtc.bin")),
        new("smp2", Boot("smp.bin", "-smp", "2")),
        new("smp-1", Boot("hello.bin", "-smp", "1")),
        new("smp-4", Boot("hello.bin", "-smp", "4")),
        new("smp-topology", Boot("hello.bin", "-smp", "cpus=4,maxcpus=8,sockets=2,cores=2,threads=2")),
        new("smp-254", Boot("hello.bin", "-smp", "254", "-m", "512"), TimeoutSeconds: 60),
        new("fault", Boot("fault.bin")),
        new("mmio-probe", Boot("mmio-probe.bin")),
        new("large-memory", Boot("hello.bin", "-m", "4G")),
        new("no-permission", ["-machine", "microvm", "-kernel", "{payload:hello.bin}"], Wrap: KvmRunner.WithoutKvmPermission),
        // The idle payload never stops by itself; SIGTERM must end the VMM cleanly with exit 0.
        new("sigterm", Boot("idle.bin", "-D"), WithInfoLog: true,
            Wrap: vmm => $"{vmm} & pid=$!; sleep 3; kill -TERM $pid; wait $pid"),
    ];

    public static VmmCase Get(string name) => All.Single(c => c.Name == name);
}
