using StratoVirt.Sys;

namespace StratoVirt.Devices.State;

/// <summary>A saved-state record that cannot be restored: another component's, another version, truncated, or
/// holding values the component refuses; the message names the record.</summary>
public sealed class StateException(string message) : VmmException(message);
