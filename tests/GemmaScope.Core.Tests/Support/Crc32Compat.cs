namespace System.IO.Hashing;

/// <summary>Plain CRC-32 (IEEE 802.3, reflected 0xEDB88320) for the test zip writer.</summary>
internal static class Crc32Compat
{
    public static uint Compute(ReadOnlySpan<byte> data)
    {
        uint crc = 0xFFFFFFFF;
        foreach (var b in data)
        {
            crc ^= b;
            for (int k = 0; k < 8; k++)
            {
                crc = (crc >> 1) ^ (0xEDB88320 & (uint)-(int)(crc & 1));
            }
        }

        return ~crc;
    }
}
