using StratoVirt.Sys;

namespace StratoVirt.Devices.Options;

/// <summary>A command-line mistake; the message names the option and value.</summary>
public sealed class UsageException(string message) : VmmException(message);
