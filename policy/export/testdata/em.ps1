#Requires -RunAsAdministrator
# Windows Firewall rules for 192.0.2.10 (enterprise-manager), made by tpwatch 1.0.0-test
# from testdata/site.yaml and the embedded matrix.
# Run it in an elevated PowerShell on that host. Running it again replaces
# these rules: it first removes every rule of the group below. To remove them:
#   Get-NetFirewallRule -Group 'tpwatch: Netwrix Threat Prevention' | Remove-NetFirewallRule
$ErrorActionPreference = 'Stop'
$group = 'tpwatch: Netwrix Threat Prevention'
$fwProfile = 'Domain'
Get-NetFirewallRule -Group $group -ErrorAction SilentlyContinue | Remove-NetFirewallRule

# Inbound: connections this host accepts
# agent-em-grpc (Enterprise Manager Firewall Rules; Agent Firewall Rules): Agent communication with the Enterprise Manager (gRPC)
New-NetFirewallRule -Name 'tpwatch-agent-em-grpc-in' -DisplayName 'tpwatch: agent to enterprise-manager tcp/3741 [agent-em-grpc]' -Group $group `
  -Direction Inbound -Action Allow -Protocol TCP -LocalPort '3741' -RemoteAddress @('198.51.100.0/24', '2001:db8:1::/64') `
  -Profile $fwProfile -Enabled True -Description 'Agent communication with the Enterprise Manager (gRPC) (Enterprise Manager Firewall Rules; Agent Firewall Rules)' | Out-Null
# console-em-grpc (Enterprise Manager Firewall Rules; Admin Console Firewall Rules; Remote Admin Console Firewall Rules): Administration Console communication with the Enterprise Manager (gRPC)
New-NetFirewallRule -Name 'tpwatch-console-em-grpc-in' -DisplayName 'tpwatch: admin-console to enterprise-manager tcp/3740 [console-em-grpc]' -Group $group `
  -Direction Inbound -Action Allow -Protocol TCP -LocalPort '3740' -RemoteAddress @('192.0.2.20', '192.0.2.21') `
  -Profile $fwProfile -Enabled True -Description 'Administration Console communication with the Enterprise Manager (gRPC) (Enterprise Manager Firewall Rules; Admin Console Firewall Rules; Remote Admin Console Firewall Rules)' | Out-Null

# Outbound: connections this host opens (Windows allows outbound by default; these matter where outbound is blocked)
# em-sql-tds (Enterprise Manager Firewall Rules; Database Firewall Rules): Enterprise Manager to SQL Server (SQL client)
New-NetFirewallRule -Name 'tpwatch-em-sql-tds-out' -DisplayName 'tpwatch: enterprise-manager to sql-server tcp/1433 [em-sql-tds]' -Group $group `
  -Direction Outbound -Action Allow -Protocol TCP -RemotePort '1433' -RemoteAddress @('192.0.2.11') `
  -Profile $fwProfile -Enabled True -Description 'Enterprise Manager to SQL Server (SQL client) (Enterprise Manager Firewall Rules; Database Firewall Rules)' | Out-Null
# em-sql-browser (Enterprise Manager Firewall Rules; Database Firewall Rules): Enterprise Manager to SQL Server Browser (SQL client)
New-NetFirewallRule -Name 'tpwatch-em-sql-browser-out' -DisplayName 'tpwatch: enterprise-manager to sql-server udp/1434 [em-sql-browser]' -Group $group `
  -Direction Outbound -Action Allow -Protocol UDP -RemotePort '1434' -RemoteAddress @('192.0.2.11') `
  -Profile $fwProfile -Enabled True -Description 'Enterprise Manager to SQL Server Browser (SQL client) (Enterprise Manager Firewall Rules; Database Firewall Rules)' | Out-Null
# em-agent-wmi-rpc (Enterprise Manager Firewall Rules): WMI endpoint mapper, required for Agent Auto Deploy
New-NetFirewallRule -Name 'tpwatch-em-agent-wmi-rpc-out' -DisplayName 'tpwatch: enterprise-manager to agent tcp/135 [em-agent-wmi-rpc]' -Group $group `
  -Direction Outbound -Action Allow -Protocol TCP -RemotePort '135' -RemoteAddress @('198.51.100.0/24', '2001:db8:1::/64') `
  -Profile $fwProfile -Enabled True -Description 'WMI endpoint mapper, required for Agent Auto Deploy (Enterprise Manager Firewall Rules)' | Out-Null
# em-agent-wmi-dcom (Enterprise Manager Firewall Rules): WMI DCOM, required for Agent Auto Deploy
New-NetFirewallRule -Name 'tpwatch-em-agent-wmi-dcom-out' -DisplayName 'tpwatch: enterprise-manager to agent tcp/1024-65535 [em-agent-wmi-dcom]' -Group $group `
  -Direction Outbound -Action Allow -Protocol TCP -RemotePort '1024-65535' -RemoteAddress @('198.51.100.0/24', '2001:db8:1::/64') `
  -Profile $fwProfile -Enabled True -Description 'WMI DCOM, required for Agent Auto Deploy (Enterprise Manager Firewall Rules)' | Out-Null
# em-siem-udp-514 (site config (siem.ports)): SIEM alerting from the Enterprise Manager
New-NetFirewallRule -Name 'tpwatch-em-siem-udp-514-out' -DisplayName 'tpwatch: enterprise-manager to siem udp/514 [em-siem-udp-514]' -Group $group `
  -Direction Outbound -Action Allow -Protocol UDP -RemotePort '514' -RemoteAddress @('192.0.2.30') `
  -Profile $fwProfile -Enabled True -Description 'SIEM alerting from the Enterprise Manager (site config (siem.ports))' | Out-Null
# em-siem-tcp-6514 (site config (siem.ports)): SIEM alerting from the Enterprise Manager
New-NetFirewallRule -Name 'tpwatch-em-siem-tcp-6514-out' -DisplayName 'tpwatch: enterprise-manager to siem tcp/6514 [em-siem-tcp-6514]' -Group $group `
  -Direction Outbound -Action Allow -Protocol TCP -RemotePort '6514' -RemoteAddress @('192.0.2.30') `
  -Profile $fwProfile -Enabled True -Description 'SIEM alerting from the Enterprise Manager (site config (siem.ports))' | Out-Null
