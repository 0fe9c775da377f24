namespace StratoVirt.Tests;

/// <summary>What a test opened, disposed in reverse order when the test ends.</summary>
public sealed class Disposables : IDisposable
{
    private readonly List<IDisposable> _items = [];

    public T Own<T>(T item) where T : IDisposable
    {
        _items.Add(item);
        return item;
    }

    public void Dispose()
    {
        for (int i = _items.Count - 1; i >= 0; i--) _items[i].Dispose();
    }
}
