#Requires -RunAsAdministrator
# Windows Firewall rules for 10.1.0.10 (enterprise-manager, admin-console, sql-server), made by tpwatch 1.0.0-test
# from testdata/colocated.yaml and the embedded matrix.
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
  -Direction Inbound -Action Allow -Protocol TCP -LocalPort '3741' -RemoteAddress @('10.1.0.5', '10.1.0.6') `
  -Profile $fwProfile -Enabled True -Description 'Agent communication with the Enterprise Manager (gRPC) (Enterprise Manager Firewall Rules; Agent Firewall Rules)' | Out-Null
# console-em-grpc (Enterprise Manager Firewall Rules; Admin Console Firewall Rules; Remote Admin Console Firewall Rules): Administration Console communication with the Enterprise Manager (gRPC)
# not created: every admin-console of the config is this host itself
# em-sql-tds (Enterprise Manager Firewall Rules; Database Firewall Rules): Enterprise Manager to SQL Server (SQL client)
# not created: every enterprise-manager of the config is this host itself
# em-sql-browser (Enterprise Manager Firewall Rules; Database Firewall Rules): Enterprise Manager to SQL Server Browser (SQL client)
# not created: every enterprise-manager of the config is this host itself
# tm-sql-tds (Netwrix Threat Manager Reporting Module Ports): Threat Manager Reporting Integration Service to SQL Server
# not created: the config names no threat-manager (list its hosts under roles to get this rule)
# tm-sql-browser (Netwrix Threat Manager Reporting Module Ports): Threat Manager Reporting Integration Service to SQL Server Browser
# not created: the config names no threat-manager (list its hosts under roles to get this rule)

# Outbound: connections this host opens (Windows allows outbound by default; these matter where outbound is blocked)
# console-em-grpc (Enterprise Manager Firewall Rules; Admin Console Firewall Rules; Remote Admin Console Firewall Rules): Administration Console communication with the Enterprise Manager (gRPC)
# not created: every enterprise-manager of the config is this host itself
# em-sql-tds (Enterprise Manager Firewall Rules; Database Firewall Rules): Enterprise Manager to SQL Server (SQL client)
# not created: every sql-server of the config is this host itself
# em-sql-browser (Enterprise Manager Firewall Rules; Database Firewall Rules): Enterprise Manager to SQL Server Browser (SQL client)
# not created: every sql-server of the config is this host itself
# em-agent-wmi-rpc (Enterprise Manager Firewall Rules): WMI endpoint mapper, required for Agent Auto Deploy
# not created: feature wmi-auto-deploy is off in the config
# em-agent-wmi-dcom (Enterprise Manager Firewall Rules): WMI DCOM, required for Agent Auto Deploy
# not created: feature wmi-auto-deploy is off in the config
