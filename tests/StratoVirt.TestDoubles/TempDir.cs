namespace StratoVirt.Tests;

/// <summary>A temporary folder removed with everything in it when the test ends.</summary>
public sealed class TempDir : IDisposable
{
    public string Path { get; } = Directory.CreateTempSubdirectory("stratovirt-test-").FullName;

    public string Write(string name, byte[] bytes)
    {
        string p = System.IO.Path.Combine(Path, name);
        File.WriteAllBytes(p, bytes);
        return p;
    }

    public void Dispose()
    {
        try { Directory.Delete(Path, recursive: true); }
        catch (IOException) { }
    }
}
