using Xunit.Abstractions;

namespace StratoVirt.Tests.Lab;

/// <summary>Debian's generic kernel on both machines under the lab's KVM (see <see cref="GenericKernelScenarios"/>).</summary>
[Trait("Level", "Lab")]
public sealed class GenericKernelLabTests(ITestOutputHelper output)
{
    /// <summary>The guest ran the generic flavour (uname -r 6.1.0-NN-amd64), not the cloud kernel.</summary>
    private static void AssertGenericKernel(LabScenario s)
    {
        string uname = s.GuestMarker("GUEST-UNAME")!;
        Assert.Matches(@"^Linux \S+ \d+\.\d+\.\d+-\d+-amd64 ", uname);
        s.AssertMarker("GUEST-CPUS", "2");
    }

    [Fact]
    public void Q35BootsTheGenericKernelWithEachVirtioPciFunctionOnMsix()
    {
        var s = Q35LabTests.Virtio("q35-generic", output);
        AssertGenericKernel(s);
        Q35LabTests.AssertEachFunctionUsesMsix(s);
        Assert.True(s.OutputContains("guest powered off (ACPI S5)"), s.Text);
    }

    [Fact]
    public void MicroVmBootsTheGenericKernelWithVirtioMmioBlockNetAndRng()
    {
        var s = LabSession.Instance.Ended("microvm-generic", output);
        AssertGenericKernel(s);
        Q35LabTests.AssertVirtioDevicesWorked(s);
        Assert.DoesNotContain(s.Output, l => l.StartsWith("GUEST-Q35V-PCI ", StringComparison.Ordinal));
        // The three virtio-mmio devices, found through the DSDT, each on an IOAPIC line of its own.
        var lines = Q35LabTests.InterruptLines(s);
        for (int i = 0; i < 3; i++)
            Assert.Single(lines, l => l.Contains("IO-APIC", StringComparison.Ordinal) && l.EndsWith($" virtio{i}", StringComparison.Ordinal));
    }
}
