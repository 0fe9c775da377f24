namespace StratoVirt.Qmp;

/// <summary>
/// Cuts a QMP input stream into top-level JSON texts, however they arrive: split across reads, several per read.
/// A text that opens with <c>{</c> or <c>[</c> ends where its brackets balance, counted outside strings; anything
/// else at the top level (a bare word, a stray bracket) ends at the next newline so the parser can reject it and
/// the stream carries on. Whitespace between texts is skipped.
/// </summary>
internal sealed class QmpFramer(int maxBytes)
{
    private readonly List<byte> _current = [];
    private int _depth;
    private bool _inString, _escaped;

    /// <summary>True while a text has started and not ended.</summary>
    public bool InProgress => _current.Count > 0;

    /// <summary>Feeds <paramref name="data"/>, adding each complete text to <paramref name="messages"/>; false
    /// when the text in progress grew past the limit (the framer is then reset).</summary>
    public bool Push(ReadOnlySpan<byte> data, List<byte[]> messages)
    {
        foreach (byte b in data)
        {
            if (_current.Count == 0 && b is (byte)' ' or (byte)'\t' or (byte)'\r' or (byte)'\n') continue;
            _current.Add(b);
            if (_current.Count > maxBytes)
            {
                Reset();
                return false;
            }
            if (_inString)
            {
                if (_escaped) _escaped = false;
                else if (b == '\\') _escaped = true;
                else if (b == '"') _inString = false;
                continue;
            }
            switch (b)
            {
                case (byte)'"':
                    _inString = true;
                    break;
                case (byte)'{' or (byte)'[':
                    _depth++;
                    break;
                case (byte)'}' or (byte)']':
                    if (--_depth <= 0) Emit(messages);
                    break;
                case (byte)'\n' when _depth == 0:
                    Emit(messages);
                    break;
            }
        }
        return true;
    }

    private void Emit(List<byte[]> messages)
    {
        messages.Add([.. _current]);
        Reset();
    }

    private void Reset()
    {
        _current.Clear();
        _depth = 0;
        _inString = _escaped = false;
    }
}
