#Requires -RunAsAdministrator
# Windows Firewall rules for every agent (198.51.100.0/24, 198.51.100.7, 2001:db8:1::/64), made by tpwatch 1.0.0-test
# from testdata/site.yaml and the embedded matrix.
# Run it in an elevated PowerShell on that host. Running it again replaces
# these rules: it first removes every rule of the group below. To remove them:
#   Get-NetFirewallRule -Group 'tpwatch: Netwrix Threat Prevention' | Remove-NetFirewallRule
$ErrorActionPreference = 'Stop'
$group = 'tpwatch: Netwrix Threat Prevention'
$fwProfile = 'Domain,Private'
Get-NetFirewallRule -Group $group -ErrorAction SilentlyContinue | Remove-NetFirewallRule

# Inbound: connections this host accepts
# em-agent-wmi-rpc (Enterprise Manager Firewall Rules): WMI endpoint mapper, required for Agent Auto Deploy
New-NetFirewallRule -Name 'tpwatch-em-agent-wmi-rpc-in' -DisplayName 'tpwatch: enterprise-manager to agent tcp/135 [em-agent-wmi-rpc]' -Group $group `
  -Direction Inbound -Action Allow -Protocol TCP -LocalPort '135' -RemoteAddress @('192.0.2.10', '2001:db8::10') `
  -Profile $fwProfile -Enabled True -Description 'WMI endpoint mapper, required for Agent Auto Deploy (Enterprise Manager Firewall Rules)' | Out-Null
# em-agent-wmi-dcom (Enterprise Manager Firewall Rules): WMI DCOM, required for Agent Auto Deploy
New-NetFirewallRule -Name 'tpwatch-em-agent-wmi-dcom-in' -DisplayName 'tpwatch: enterprise-manager to agent tcp/1024-65535 [em-agent-wmi-dcom]' -Group $group `
  -Direction Inbound -Action Allow -Protocol TCP -LocalPort '1024-65535' -RemoteAddress @('192.0.2.10', '2001:db8::10') `
  -Profile $fwProfile -Enabled True -Description 'WMI DCOM, required for Agent Auto Deploy (Enterprise Manager Firewall Rules)' | Out-Null
# am-agent (Ports for NAS Device Activity Monitoring): Activity Monitor to Agent communication
# not created: the config names no activity-monitor (list its hosts under roles to get this rule)
# cee-agent-rpc (Dell Celerra & Dell VNX Devices Additional Firewall Rules; Dell Isilon/PowerScale Devices Additional Firewall Rules; Dell Unity Devices Additional Firewall Rules): CEE event data to the Activity Agent (RPC dynamic range), when not the same server
# not created: the config names no cee-server (list its hosts under roles to get this rule)
# nasuni-agent-amqp (Nasuni Edge Appliance Additional Firewall Rules): Nasuni event reporting (AMQP over TLS)
# not created: the config names no nasuni (list its hosts under roles to get this rule)
# netapp7-agent-rpc (NetApp Data ONTAP 7-Mode Device Additional Firewall Rules): RPC from NetApp 7-Mode to the Activity Agent
# not created: the config names no netapp-7mode (list its hosts under roles to get this rule)
# netapp7-agent-smb (NetApp Data ONTAP 7-Mode Device Additional Firewall Rules): SMB from NetApp 7-Mode to the Activity Agent
# not created: the config names no netapp-7mode (list its hosts under roles to get this rule)
# netapp7-agent-nbns (NetApp Data ONTAP 7-Mode Device Additional Firewall Rules): NetBIOS name service from NetApp 7-Mode to the Activity Agent
# not created: the config names no netapp-7mode (list its hosts under roles to get this rule)
# netapp7-agent-nbdgm (NetApp Data ONTAP 7-Mode Device Additional Firewall Rules): NetBIOS datagrams from NetApp 7-Mode to the Activity Agent
# not created: the config names no netapp-7mode (list its hosts under roles to get this rule)
# netappc-agent-fpolicy (NetApp Data ONTAP Cluster-Mode Device Additional Firewall Rules): FPolicy events from NetApp Cluster-Mode to the Activity Agent
# not created: the config names no netapp-cdot (list its hosts under roles to get this rule)
# panzura-agent-amqp (Panzura Devices Additional Firewall Rules): Panzura event reporting (AMQP over TCP)
# not created: the config names no panzura (list its hosts under roles to get this rule)
# rdp-admin (site config (allow)):
New-NetFirewallRule -Name 'tpwatch-rdp-admin-in' -DisplayName 'tpwatch: admin-console to agent tcp/3389 [rdp-admin]' -Group $group `
  -Direction Inbound -Action Allow -Protocol TCP -LocalPort '3389' -RemoteAddress @('192.0.2.20', '192.0.2.21') `
  -Profile $fwProfile -Enabled True -Description '(site config (allow))' | Out-Null

# Outbound: connections this host opens (Windows allows outbound by default; these matter where outbound is blocked)
# agent-em-grpc (Enterprise Manager Firewall Rules; Agent Firewall Rules): Agent communication with the Enterprise Manager (gRPC)
New-NetFirewallRule -Name 'tpwatch-agent-em-grpc-out' -DisplayName 'tpwatch: agent to enterprise-manager tcp/3741 [agent-em-grpc]' -Group $group `
  -Direction Outbound -Action Allow -Protocol TCP -RemotePort '3741' -RemoteAddress @('192.0.2.10', '2001:db8::10') `
  -Profile $fwProfile -Enabled True -Description 'Agent communication with the Enterprise Manager (gRPC) (Enterprise Manager Firewall Rules; Agent Firewall Rules)' | Out-Null
# agent-tm-tcp (Agent Firewall Rules; Ports for Integration with Full Netwrix Threat Manager): Agent to Threat Manager communication and data event stream
New-NetFirewallRule -Name 'tpwatch-agent-tm-tcp-out' -DisplayName 'tpwatch: agent to threat-manager tcp/10000,10001 [agent-tm-tcp]' -Group $group `
  -Direction Outbound -Action Allow -Protocol TCP -RemotePort @('10000', '10001') -RemoteAddress @('192.0.2.13') `
  -Profile $fwProfile -Enabled True -Description 'Agent to Threat Manager communication and data event stream (Agent Firewall Rules; Ports for Integration with Full Netwrix Threat Manager)' | Out-Null
# agent-nasuni-api (Nasuni Edge Appliance Additional Firewall Rules): Nasuni API calls (HTTPS)
# not created: the config names no nasuni (list its hosts under roles to get this rule)
# agent-netapp7-ontapi-http (NetApp Data ONTAP 7-Mode Device Additional Firewall Rules): ONTAPI over HTTP (FPolicy Configuration / Enable and Connect)
# not created: feature fpolicy-management is off in the config
# agent-netapp7-ontapi-https (NetApp Data ONTAP 7-Mode Device Additional Firewall Rules): ONTAPI over HTTPS (FPolicy Configuration / Enable and Connect)
# not created: feature fpolicy-management is off in the config
# agent-netapp7-rpc (NetApp Data ONTAP 7-Mode Device Additional Firewall Rules): RPC to NetApp 7-Mode
# not created: the config names no netapp-7mode (list its hosts under roles to get this rule)
# agent-netapp7-smb (NetApp Data ONTAP 7-Mode Device Additional Firewall Rules): SMB to NetApp 7-Mode
# not created: the config names no netapp-7mode (list its hosts under roles to get this rule)
# agent-netapp7-nbns (NetApp Data ONTAP 7-Mode Device Additional Firewall Rules): NetBIOS name service to NetApp 7-Mode
# not created: the config names no netapp-7mode (list its hosts under roles to get this rule)
# agent-netapp7-nbdgm (NetApp Data ONTAP 7-Mode Device Additional Firewall Rules): NetBIOS datagrams to NetApp 7-Mode
# not created: the config names no netapp-7mode (list its hosts under roles to get this rule)
# agent-netappc-ontapi-http (NetApp Data ONTAP Cluster-Mode Device Additional Firewall Rules): ONTAPI over HTTP (FPolicy Configuration / Enable and Connect)
# not created: feature fpolicy-management is off in the config
# agent-netappc-ontapi-https (NetApp Data ONTAP Cluster-Mode Device Additional Firewall Rules): ONTAPI over HTTPS (FPolicy Configuration / Enable and Connect)
# not created: feature fpolicy-management is off in the config
# agent-panzura-api (Panzura Devices Additional Firewall Rules): Panzura API (HTTPS)
# not created: the config names no panzura (list its hosts under roles to get this rule)
# agent-tm-events-udp (Ports for Integration with Full Netwrix Threat Manager): Data event stream to Threat Manager (UDP)
New-NetFirewallRule -Name 'tpwatch-agent-tm-events-udp-out' -DisplayName 'tpwatch: agent to threat-manager udp/10001 [agent-tm-events-udp]' -Group $group `
  -Direction Outbound -Action Allow -Protocol UDP -RemotePort '10001' -RemoteAddress @('192.0.2.13') `
  -Profile $fwProfile -Enabled True -Description 'Data event stream to Threat Manager (UDP) (Ports for Integration with Full Netwrix Threat Manager)' | Out-Null
