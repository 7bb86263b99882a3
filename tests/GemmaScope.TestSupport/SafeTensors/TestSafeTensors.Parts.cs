using System.Buffers.Binary;
using System.Text;

namespace GemmaScope.TestSupport;

public static partial class TestSafeTensors
{
    /// <summary>
    /// A file's header JSON as text (its padding spaces trimmed) and its data bytes: for a test that edits a valid file's
    /// header by hand. <see cref="Build(string, byte[])"/> of the two unchanged gives the same file back.
    /// </summary>
    public static (string Header, byte[] Data) Parts(byte[] file)
    {
        int n = checked((int)BinaryPrimitives.ReadUInt64LittleEndian(file));
        return (Encoding.UTF8.GetString(file, 8, n).TrimEnd(' '), file[(8 + n)..]);
    }
}
