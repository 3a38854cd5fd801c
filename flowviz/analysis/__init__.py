"""Analysis over correlated calls: RFC 6076 KPIs."""
