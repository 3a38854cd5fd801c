"""Analysis over correlated calls: RFC 6076 KPIs (kpis) and diagnostics (rulebook: what a rule is; rules_sip,
rules_media, rules_capture: the rules; diagnose: the runner)."""
