/*
 * TEST SCAFFOLDING ONLY: NEVER SHIP THIS DLL.
 *
 * A wpcap.dll with a single function, as an old WinPcap or a broken install
 * might leave one. scripts/wine-test.sh puts it where Npcap's own goes
 * (System32\Npcap) in its throw-away Wine prefix, and checks that tpwatch
 * loads it from there first and says which function it lacks instead of
 * dying.
 */
__declspec(dllexport) const char *pcap_lib_version(void)
{
    return "incomplete wpcap.dll (a tpwatch test)";
}
