using Ozone;

namespace StratoVirt.Tests.Unit;

/// <summary>ozone's command line: upstream's spellings, several values for -source and -cgroup, "--", and one-line errors.</summary>
[Trait("Level", "Unit")]
public sealed class OzoneOptionsTests
{
    private static readonly string[] Required = ["-name", "vm1", "-exec-file", "/usr/bin/stratovirt", "-uid", "100", "-gid", "200"];

    private static OzoneOptions Parse(params string[] extra) => OzoneOptions.Parse([.. Required, .. extra]);

    private static void AssertError(string expected, params string[] args)
    {
        var e = Assert.Throws<OzoneException>(() => OzoneOptions.Parse(args));
        Assert.Contains(expected, e.Message);
        Assert.DoesNotContain('\n', e.Message);
    }

    [Fact]
    public void FullCommandLine()
    {
        var o = Parse("-capability", "cap_net_raw,CAP_CHOWN", "-netns", "/var/run/netns/n1", "-source", "/a/vmlinux.bin", "/b/rootfs",
            "-numa", "0", "-cgroup", "cpuset.cpus=4-5", "memory.limit_in_bytes=1000000", "-clean-resource",
            "--", "-kernel", "./vmlinux.bin", "-name", "inner");
        Assert.Equal("vm1", o.Name);
        Assert.Equal("stratovirt", o.ExecName);
        Assert.Equal((100u, 200u), (o.Uid, o.Gid));
        Assert.Equal(["CAP_NET_RAW", "CAP_CHOWN"], o.Capabilities);
        Assert.Equal("/var/run/netns/n1", o.NetNs);
        Assert.Equal(["/a/vmlinux.bin", "/b/rootfs"], o.Sources);
        Assert.Equal("0", o.Numa);
        Assert.Equal("4-5", o.CpusetCpus);
        Assert.Equal("1000000", o.MemoryLimit);
        Assert.True(o.CleanResource);
        Assert.True(o.HasCommand);
        Assert.Equal(["-kernel", "./vmlinux.bin", "-name", "inner"], o.ExecArgs);
    }

    [Fact]
    public void MinimalCommandLineAndTheGuidebookSpelling()
    {
        var o = OzoneOptions.Parse(["-name", "x", "-exec_file", "/bin/sv", "-uid", "0", "-gid", "65535"]);
        Assert.Equal("sv", o.ExecName);
        Assert.False(o.CleanResource);
        Assert.False(o.HasCommand);
        Assert.Empty(o.ExecArgs);
        Assert.Empty(o.Sources);
        Assert.Null(o.CpusetCpus);
        Assert.Equal(65535u, o.Gid);
    }

    [Theory]
    [InlineData("-name")]
    [InlineData("-exec-file")]
    [InlineData("-uid")]
    [InlineData("-gid")]
    public void RequiredOptions(string missing)
    {
        int at = Array.IndexOf(Required, missing);
        string[] args = [.. Required[..at], .. Required[(at + 2)..]];
        AssertError($"option '{missing}' is required", args);
    }

    [Theory]
    [InlineData("option '-bogus'", "-bogus", "1")]
    [InlineData("is given more than once", "-uid", "5")]
    [InlineData("takes no value", "-clean-resource", "yes")]
    [InlineData("needs a value", "-netns")]
    [InlineData("takes one value", "-numa", "0", "1")]
    [InlineData("not supported", "-cgroup", "cpu.shares=10")]
    [InlineData("is given more than once", "-cgroup", "cpuset.cpus=1", "cpuset.cpus=2")]
    [InlineData("is not <key>=<value>", "-cgroup", "cpuset.cpus")]
    [InlineData("not a list of numbers", "-cgroup", "cpuset.cpus=a-b")]
    [InlineData("not a byte count", "-cgroup", "memory.limit_in_bytes=lots")]
    [InlineData("not a capability name", "-capability", "CAP_FLY")]
    [InlineData("not a list of numbers", "-numa", "zero")]
    public void BadOptions(string expected, params string[] extra) => AssertError(expected, [.. Required, .. extra]);

    [Theory]
    [InlineData("-uid", "-1", "unknown option '-1'")] // as upstream: a leading dash makes an option
    [InlineData("-uid", "65536", "above 65535")]
    [InlineData("-gid", "x", "not a number")]
    [InlineData("-name", "a/b", "plain file name")]
    [InlineData("-name", "..", "plain file name")]
    public void BadValues(string option, string value, string expected)
    {
        var args = (string[])Required.Clone();
        args[Array.IndexOf(args, option) + 1] = value;
        AssertError(expected, args);
    }

    [Fact]
    public void NameLongerThan255() => AssertError("longer than 255", ["-name", new string('n', 256), .. Required[2..]]);

    [Fact]
    public void ValueBeforeAnyOption() => AssertError("unexpected argument 'stray'", ["stray", .. Required]);

    [Fact]
    public void HelpOnlyBeforeTheSeparator()
    {
        Assert.True(OzoneOptions.WantsHelp(["-h"]));
        Assert.True(OzoneOptions.WantsHelp([.. Required, "--help"]));
        Assert.False(OzoneOptions.WantsHelp([.. Required, "--", "-h"]));
    }

    [Fact]
    public void MountInfoLinesWithEscapes()
    {
        const string text = "36 25 0:31 / /sys/fs/cgroup/memory rw,nosuid shared:15 - cgroup cgroup rw,memory\n" +
                            "41 26 254:0 /tmp/a\\040b /srv/ozone/x/y/a\\040b rw - ext4 /dev/vda rw\n";
        var entries = MountTable.Parse(text);
        Assert.Equal(new MountEntry("/sys/fs/cgroup/memory", "cgroup", "rw,memory"), entries[0]);
        Assert.Equal("/srv/ozone/x/y/a b", entries[1].MountPoint);
        Assert.Equal(["/srv/ozone/x/y/a b"], MountTable.Below(text, "/srv/ozone/x/y"));
        Assert.Empty(MountTable.Below(text, "/srv/ozone/x/yy"));
    }

    [Fact]
    public void CgroupPlanUsesOneFolderPerV1Hierarchy()
    {
        const string text = "36 25 0:31 / /sys/fs/cgroup/memory rw - cgroup cgroup rw,memory\n" +
                            "37 25 0:32 / /sys/fs/cgroup/cpuset rw - cgroup cgroup rw,cpuset\n";
        var plan = CgroupLimits.Plan(Parse("-numa", "0", "-cgroup", "memory.limit_in_bytes=1M", "cpuset.cpus=0"), text);
        Assert.Equal(["/sys/fs/cgroup/cpuset/stratovirt/vm1", "/sys/fs/cgroup/memory/stratovirt/vm1"], plan.Directories.Order());
        Assert.Empty(CgroupLimits.Plan(Parse(), text).Directories);
    }

    [Fact]
    public void CgroupPlanNamesAMissingController()
    {
        const string text = "37 25 0:32 / /sys/fs/cgroup/cpuset rw - cgroup cgroup rw,cpuset\n";
        var e = Assert.Throws<OzoneException>(() => CgroupLimits.Plan(Parse("-cgroup", "memory.limit_in_bytes=1M"), text));
        Assert.Contains("controller 'memory' is not available", e.Message);
    }

    [Fact]
    public void CapabilityMaskAndRisk()
    {
        Assert.Equal((1UL << 10) | (1UL << 21), CapabilitySet.Mask(["CAP_NET_BIND_SERVICE", "CAP_SYS_ADMIN"]));
        Assert.True(CapabilitySet.IsRisky("CAP_SYS_ADMIN"));
        Assert.False(CapabilitySet.IsRisky("CAP_CHOWN"));
        Assert.Equal(41, CapabilitySet.Names.Length);
    }
}
