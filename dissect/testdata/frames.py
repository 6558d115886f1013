#!/usr/bin/env python3
# Writes dissect/corpus_frames_test.go from the shared corpus with tshark:
#   python3 dissect/testdata/frames.py > dissect/corpus_frames_test.go && gofmt -w dissect/corpus_frames_test.go
# To add a frame, add a line to `frames`. TestCorpusFrames re-reads every
# frame with tpwatch's own reader (capture + gopacket) and checks the bytes,
# so the Go file stays true without tshark.
import subprocess, sys
import os
C=os.path.join(os.path.dirname(os.path.abspath(__file__)), '..', '..', '..', 'shared', 'corpus') + '/'
MAPI='protocols/zeek/dce-rpc/mapi.pcap'
DCS='protocols/pcap-attack/CredAccess/DCShadow_add_primarygroupid_512_to_std_account.pcapng'
ZL='protocols/pcap-attack/Lateral_Movement/zerologon_mimikatz_ntlm_privacy_scan_and_exploit_encrypted.pcapng'
SV='protocols/suricata-verify/dcerpc/zerologon/input.pcap'
WMI='enterprise/pcap-attack/Lateral_Movement/LM_WMI_ProcessCallCreate.pcapng'
frames = [
 # name, file, frame, max bytes kept (0 = all)
 ('mapi397', MAPI, 397, 0), ('mapi398', MAPI, 398, 0), ('mapi399', MAPI, 399, 0), ('mapi400', MAPI, 400, 0),
 ('mapi702', MAPI, 702, 0), ('mapi703', MAPI, 703, 0), ('mapi704', MAPI, 704, 0), ('mapi705', MAPI, 705, 0),
 ('dcshadow24', DCS, 24, 0), ('dcshadow25', DCS, 25, 0), ('dcshadow26', DCS, 26, 0), ('dcshadow27', DCS, 27, 0),
 ('dcshadow43', DCS, 43, 0), ('dcshadow44', DCS, 44, 0), ('dcshadow45', DCS, 45, 0), ('dcshadow46', DCS, 46, 0),
 ('zerologon1', ZL, 1, 0), ('zerologon2', ZL, 2, 0), ('zerologon3', ZL, 3, 0), ('zerologon4', ZL, 4, 0), ('zerologon5', ZL, 5, 0),
 ('suricataZerologon8', SV, 8, 0),
 ('wmi18', WMI, 18, 0), ('wmi19', WMI, 19, 0), ('wmi21', WMI, 21, 0), ('wmi22', WMI, 22, 0), ('wmi23', WMI, 23, 0), ('wmi24', WMI, 24, 0), ('wmi25', WMI, 25, 0),
 ('tls13ClientHello', 'protocols/arkime/curl-enabled-tls13.pcap', 8, 0),
 ('tls13ServerHello', 'protocols/arkime/curl-enabled-tls13.pcap', 10, 160),
 ('h2PrefaceNghttp2', 'protocols/arkime/http2-nghttp2.pcap', 4, 128),
 ('h2SettingsNghttp2', 'protocols/arkime/http2-nghttp2.pcap', 10, 0),
 ('grpcClientMidstream', 'protocols/deepflow/http/h2c_ascii.pcap', 1, 0),
 ('grpcServerMidstream', 'protocols/deepflow/http/h2c_ascii.pcap', 2, 0),
 ('httpRequest', 'protocols/arkime/v6-http.pcap', 49, 0),
 ('httpResponse', 'protocols/arkime/v6-http.pcap', 50, 64),
 ('tdsPreloginTDS7', 'protocols/arkime/tds7.pcap', 4, 0),
 ('tdsPreloginResponseTDS7', 'protocols/arkime/tds7.pcap', 5, 0),
 ('tdsSQLBatch', 'protocols/ndpi/mssql_tds.pcap', 1, 64),
 ('amqpHeader091', 'protocols/deepflow/amqp/amqp1.pcap', 6, 0),
 ('amqpStart091', 'protocols/deepflow/amqp/amqp1.pcap', 8, 64),
 ('smb1Negotiate', 'enterprise/zeek/smb/smb2.pcap', 4, 64),
 ('smb2NegotiateResponse', 'enterprise/zeek/smb/smb2.pcap', 5, 64),
 ('nbssSessionRequestWin10', 'protocols/arkime/wireshark-smb-on-windows10.pcap', 3, 0),
 ('nbssPositiveResponseWin10', 'protocols/arkime/wireshark-smb-on-windows10.pcap', 4, 0),
 ('krbASReqTCP', 'protocols/arkime/krb5-tcp.pcap', 4, 64),
 ('krbErrorTCP', 'protocols/ndpi/kerberos.pcap', 2, 64),
 ('krbASReqUDP', 'protocols/arkime/krb5-udp.pcap', 1, 64),
 ('ldapBind', 'protocols/arkime/ldap-and-search.pcap', 4, 0),
 ('ldapBindResponseWindows', DCS, 1, 64),
 ('ldapSASLWindows', DCS, 2, 64),
 ('nbnsQuery', 'protocols/ndpi/netbios.pcap', 1, 0),
 ('nbdgmBrowser', 'tcpdump/eapon1.pcap', 1, 64),
 ('rdpNegotiateRequest', 'protocols/ndpi/rdp.pcap', 4, 0),
 ('rdpNegotiateResponse', 'protocols/ndpi/rdp.pcap', 5, 0),
]
def tshark(path, frame):
    out = subprocess.run(['tshark','-r',C+path,'-Y',f'frame.number=={frame}','-T','fields','-E','separator=|',
        '-e','ip.src','-e','ipv6.src','-e','tcp.srcport','-e','udp.srcport','-e','ip.dst','-e','ipv6.dst','-e','tcp.dstport','-e','udp.dstport',
        '-e','tcp.seq_raw','-e','tcp.len','-e','udp.length','-e','tcp.payload','-e','udp.payload','-e','_ws.col.Info'],
        capture_output=True, text=True).stdout.strip().split('\n')[0].split('|')
    return out
o = sys.stdout
o.write('''package dissect

// Written by dissect/testdata/frames.py from the shared corpus (tshark -r FILE
// -Y frame.number==N -T fields -e tcp.payload); TestCorpusFrames reads
// every frame again with tpwatch's own reader and checks these bytes.
// Each payload is laid out as a hex dump: offset, 16 bytes, ASCII.

''')
for name, path, num, keep in frames:
    f = tshark(path, num)
    src = f[0] or f[1]; dst = f[4] or f[5]
    tcp = f[2] != ''
    sport = f[2] or f[3]; dport = f[6] or f[7]
    seq = f[8] or '0'
    if tcp:
        plen = int(f[9]); hx = f[11]
    else:
        plen = int(f[10]) - 8; hx = f[12]
    data = bytes.fromhex(hx)
    assert len(data) == plen, (name, len(data), plen)
    if keep and len(data) > keep: data = data[:keep]
    info = f[13].strip().replace('\\', '/')
    if len(info) > 90: info = info[:87] + '...'
    sa = f'[{src}]' if ':' in src else src
    da = f'[{dst}]' if ':' in dst else dst
    o.write(f'// {name}: {path} frame {num}, {sa}:{sport} → {da}:{dport}\n// ({"TCP" if tcp else "UDP"} payload {plen} bytes{"" if len(data)==plen else f", first {len(data)} kept"}; tshark: {info}).\n')
    o.write(f'var {name} = corpusFrame{{\n\tfile: "{path}", frame: {num}, transport: {"TCP" if tcp else "UDP"},\n\tsrcPort: {sport}, dstPort: {dport}, seq: {seq}, payloadLen: {plen},\n\tpayload: []byte{{\n')
    for i in range(0, len(data), 16):
        chunk = data[i:i+16]
        hexs = ' '.join(f'0x{b:02x},' for b in chunk)
        asc = ''.join(chr(b) if 32 <= b < 127 else '.' for b in chunk)
        o.write(f'\t\t{hexs} // {i:04x} {asc}\n')
    o.write('\t},\n}\n\n')
o.write('// corpusFrames lists the frames above by name, for TestCorpusFrames and\n// the fuzz seeds.\nvar corpusFrames = map[string]*corpusFrame{\n')
for name, *_ in frames:
    o.write(f'\t"{name}": &{name},\n')
o.write('}\n')
