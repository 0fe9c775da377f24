using System.Buffers.Binary;
using System.Text;

namespace StratoVirt.Tests.Boot;

/// <summary>A node read back from a flattened device tree.</summary>
public sealed class FdtNode(string name)
{
    public string Name { get; } = name;
    public Dictionary<string, byte[]> Properties { get; } = [];
    public List<FdtNode> Children { get; } = [];

    public FdtNode Child(string name) => Children.Single(c => c.Name == name);

    public uint[] Cells(string property)
    {
        byte[] v = Properties[property];
        Assert.Equal(0, v.Length % 4);
        return [.. Enumerable.Range(0, v.Length / 4).Select(i => BinaryPrimitives.ReadUInt32BigEndian(v.AsSpan(4 * i)))];
    }

    public string[] Strings(string property)
    {
        byte[] v = Properties[property];
        Assert.Equal(0, v[^1]);
        return Encoding.UTF8.GetString(v, 0, v.Length - 1).Split('\0');
    }
}

/// <summary>An independent, strict reader of the DTSpec blob format: every offset, alignment and token checked.</summary>
public static class FdtReader
{
    public static FdtNode Parse(byte[] blob)
    {
        uint U32(int at) => BinaryPrimitives.ReadUInt32BigEndian(blob.AsSpan(at));
        Assert.Equal(0xD00DFEEDu, U32(0));
        Assert.Equal((uint)blob.Length, U32(4));
        int structAt = (int)U32(8), stringsAt = (int)U32(12), rsvAt = (int)U32(16);
        Assert.Equal(17u, U32(20));
        Assert.Equal(16u, U32(24));
        int stringsSize = (int)U32(32), structSize = (int)U32(36);
        Assert.Equal(0, rsvAt % 8);
        Assert.Equal(0, structAt % 4);
        Assert.True(rsvAt >= 40 && structAt >= rsvAt + 16);
        Assert.Equal(0UL, BinaryPrimitives.ReadUInt64BigEndian(blob.AsSpan(rsvAt)));
        Assert.Equal(0UL, BinaryPrimitives.ReadUInt64BigEndian(blob.AsSpan(rsvAt + 8)));
        Assert.True(structAt + structSize <= stringsAt && stringsAt + stringsSize <= blob.Length);

        string CString(int at, int limit)
        {
            int end = Array.IndexOf(blob, (byte)0, at, limit - at);
            Assert.True(end >= 0, "unterminated string");
            return Encoding.UTF8.GetString(blob, at, end - at);
        }

        var stack = new Stack<FdtNode>();
        FdtNode? root = null;
        int p = structAt, end = structAt + structSize;
        while (true)
        {
            Assert.True(p + 4 <= end, "structure block ends without FDT_END");
            uint token = U32(p);
            p += 4;
            switch (token)
            {
                case 1:
                    string name = CString(p, end);
                    p = (p + Encoding.UTF8.GetByteCount(name) + 1 + 3) & ~3;
                    var node = new FdtNode(name);
                    if (stack.Count == 0) { Assert.Null(root); root = node; }
                    else stack.Peek().Children.Add(node);
                    stack.Push(node);
                    break;
                case 2:
                    stack.Pop();
                    break;
                case 3:
                    int length = (int)U32(p), nameOffset = (int)U32(p + 4);
                    Assert.True(nameOffset < stringsSize);
                    var current = stack.Peek();
                    Assert.Empty(current.Children); // properties come before child nodes
                    current.Properties.Add(CString(stringsAt + nameOffset, stringsAt + stringsSize), blob[(p + 8)..(p + 8 + length)]);
                    p = (p + 8 + length + 3) & ~3;
                    break;
                case 9:
                    Assert.Empty(stack);
                    Assert.Equal(end, p);
                    return root!;
                default:
                    Assert.Fail($"unknown token {token} at {p - 4}");
                    break;
            }
        }
    }
}
