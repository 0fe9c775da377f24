using System.Reflection.Metadata;
using System.Reflection.PortableExecutable;

namespace StratoVirt.Tests.Unit;

/// <summary>What the shipped assemblies may not use. LINQ: each Enumerable call over a new element type brings
/// iterator types and array interfaces into the NativeAOT binary, which rehydrates them at every start (README,
/// "No LINQ"). Directory.Build.targets drops the implicit <c>using System.Linq</c>, but a collection expression's
/// spread can still compile to Enumerable.ToArray or ToList, so the compiled assemblies are read.</summary>
[Trait("Level", "Unit")]
public sealed class ShippedCodeTests
{
    private static readonly string[] Shipped =
    [
        "stratovirt", "ozone", "StratoVirt.Sys", "StratoVirt.Kvm", "StratoVirt.Memory", "StratoVirt.Boot",
        "StratoVirt.Devices", "StratoVirt.Virtio", "StratoVirt.Machine", "StratoVirt.Qmp",
    ];

    [Fact]
    public void NoShippedAssemblyReferencesLinq()
    {
        var found = new List<string>();
        foreach (string name in Shipped)
        {
            string path = Path.Combine(AppContext.BaseDirectory, name + ".dll");
            Assert.True(File.Exists(path), $"{path} is missing");
            using var pe = new PEReader(File.OpenRead(path));
            var md = pe.GetMetadataReader();
            foreach (var h in md.TypeReferences)
            {
                var t = md.GetTypeReference(h);
                string ns = md.GetString(t.Namespace);
                if (ns == "System.Linq" || ns.StartsWith("System.Linq.", StringComparison.Ordinal))
                    found.Add($"{name}: {ns}.{md.GetString(t.Name)}");
            }
        }
        Assert.Empty(found);
    }
}
