#Requires -RunAsAdministrator
# Windows Firewall rules for 192.0.2.11 (sql-server), made by tpwatch 1.0.0-test
# from testdata/site.yaml and the embedded matrix.
# Run it in an elevated PowerShell on that host. Running it again replaces
# these rules: it first removes every rule of the group below. To remove them:
#   Get-NetFirewallRule -Group 'tpwatch: Netwrix Threat Prevention' | Remove-NetFirewallRule
$ErrorActionPreference = 'Stop'
$group = 'tpwatch: Netwrix Threat Prevention'
$fwProfile = 'Domain'
Get-NetFirewallRule -Group $group -ErrorAction SilentlyContinue | Remove-NetFirewallRule

# Inbound: connections this host accepts
# em-sql-tds (Enterprise Manager Firewall Rules; Database Firewall Rules): Enterprise Manager to SQL Server (SQL client)
New-NetFirewallRule -Name 'tpwatch-em-sql-tds-in' -DisplayName 'tpwatch: enterprise-manager to sql-server tcp/1433 [em-sql-tds]' -Group $group `
  -Direction Inbound -Action Allow -Protocol TCP -LocalPort '1433' -RemoteAddress @('192.0.2.10', '2001:db8::10') `
  -Profile $fwProfile -Enabled True -Description 'Enterprise Manager to SQL Server (SQL client) (Enterprise Manager Firewall Rules; Database Firewall Rules)' | Out-Null
# em-sql-browser (Enterprise Manager Firewall Rules; Database Firewall Rules): Enterprise Manager to SQL Server Browser (SQL client)
New-NetFirewallRule -Name 'tpwatch-em-sql-browser-in' -DisplayName 'tpwatch: enterprise-manager to sql-server udp/1434 [em-sql-browser]' -Group $group `
  -Direction Inbound -Action Allow -Protocol UDP -LocalPort '1434' -RemoteAddress @('192.0.2.10', '2001:db8::10') `
  -Profile $fwProfile -Enabled True -Description 'Enterprise Manager to SQL Server Browser (SQL client) (Enterprise Manager Firewall Rules; Database Firewall Rules)' | Out-Null
# tm-sql-tds (Netwrix Threat Manager Reporting Module Ports): Threat Manager Reporting Integration Service to SQL Server
New-NetFirewallRule -Name 'tpwatch-tm-sql-tds-in' -DisplayName 'tpwatch: threat-manager to sql-server tcp/1433 [tm-sql-tds]' -Group $group `
  -Direction Inbound -Action Allow -Protocol TCP -LocalPort '1433' -RemoteAddress @('192.0.2.13') `
  -Profile $fwProfile -Enabled True -Description 'Threat Manager Reporting Integration Service to SQL Server (Netwrix Threat Manager Reporting Module Ports)' | Out-Null
# tm-sql-browser (Netwrix Threat Manager Reporting Module Ports): Threat Manager Reporting Integration Service to SQL Server Browser
New-NetFirewallRule -Name 'tpwatch-tm-sql-browser-in' -DisplayName 'tpwatch: threat-manager to sql-server udp/1434 [tm-sql-browser]' -Group $group `
  -Direction Inbound -Action Allow -Protocol UDP -LocalPort '1434' -RemoteAddress @('192.0.2.13') `
  -Profile $fwProfile -Enabled True -Description 'Threat Manager Reporting Integration Service to SQL Server Browser (Netwrix Threat Manager Reporting Module Ports)' | Out-Null
