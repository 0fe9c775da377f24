namespace StratoVirt.Sys;

/// <summary>The release this build reports, to `-version` and to QMP's greeting and query-version. A constant
/// rather than the assembly's version: reading that goes through reflection, which starts the runtime's type loader
/// on every `-version`.</summary>
public static class Product
{
    public const string Version = "2.5.0";
}
