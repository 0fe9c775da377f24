using StratoVirt.Sys;

namespace StratoVirt.Boot;

/// <summary>The guest cannot be booted with the given kernel, initrd, command line or memory size.</summary>
public sealed class BootException(string message) : VmmException(message);
