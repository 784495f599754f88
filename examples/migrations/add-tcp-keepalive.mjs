// Caisson 1.1.0 migration: ADDS a setting.
// 1.1.0 recommends a 10-minute TCP keepalive (NAT gateways drop idle connections after ~350 s), so
// forward sets kernel.sysctl."net.ipv4.tcp_keepalive_time" = "600" on hosts that have not set it
// themselves (observable: /etc/sysctl.d/ drop-in). Backward removes it again, but only if it still
// holds the value this migration added: a value the user chose survives a downgrade.
// Runs from a data: URL with no imports: everything it needs comes in `helpers`.
const KEY = 'settings.kernel.sysctl."net.ipv4.tcp_keepalive_time"';

export const description = "add kernel.sysctl.net.ipv4.tcp_keepalive_time = 600 unless set";
export const forward = (settings, helpers) => helpers.addValue(KEY, "600").forward(settings);
export const backward = (settings, helpers) => helpers.addValue(KEY, "600").backward(settings);
