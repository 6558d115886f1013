/*
 * TEST SCAFFOLDING ONLY: NEVER SHIP THIS DLL.
 *
 * Go >= 1.22 on Windows takes its random numbers from ProcessPrng in
 * bcryptprimitives.dll, which Wine 8 (Debian 12) lacks: every Go program
 * dies at start with "bcryptprimitives.dll not found". scripts/wine-test.sh
 * builds this stand-in with mingw-w64 into its own throw-away Wine prefix,
 * only when that prefix has no bcryptprimitives.dll of its own. Real
 * Windows 10 and later have the real one. (The same work-around:
 * mozilla/glean#2823; the research notes, section 4.6.)
 */
#include <windows.h>

BOOLEAN WINAPI SystemFunction036(PVOID, ULONG); /* RtlGenRandom, advapi32 */

__declspec(dllexport) BOOL WINAPI ProcessPrng(PBYTE data, SIZE_T len)
{
    while (len > 0) {
        ULONG n = len > 0x10000000 ? 0x10000000 : (ULONG)len;
        if (!SystemFunction036(data, n))
            return FALSE;
        data += n;
        len -= n;
    }
    return TRUE;
}
