//! Which networks hold public addresses. Whether a rule admits "the
//! internet" comes down to this: its nets, less its exceptions, less the
//! private ranges, is not empty.

use std::net::IpAddr;

use ipnet::IpNet;

/// The ranges that are not the internet: RFC 1918, loopback and link-local
/// (IPv4 and IPv6), IPv6 unique local addresses.
pub const PRIVATE: [&str; 8] = [
    "10.0.0.0/8",
    "172.16.0.0/12",
    "192.168.0.0/16",
    "127.0.0.0/8",
    "169.254.0.0/16",
    "::1/128",
    "fe80::/10",
    "fc00::/7",
];

/// Every address, IPv4 and IPv6: what a rule without nets admits.
pub const EVERYWHERE: [&str; 2] = ["0.0.0.0/0", "::/0"];

/// A CIDR, or a bare address as Calico accepts in `nets` (a /32 or /128).
pub fn parse_net(text: &str) -> Result<IpNet, String> {
    let text = text.trim();
    text.parse::<IpNet>()
        .map(|n| n.trunc())
        .or_else(|_| text.parse::<IpAddr>().map(IpNet::from))
        .map_err(|_| format!("{text:?} is not a CIDR or an IP address"))
}

fn parse_all(texts: &[&str]) -> Vec<IpNet> {
    texts.iter().filter_map(|t| parse_net(t).ok()).collect()
}

/// `net` less `hole`, as CIDRs. Two CIDRs are nested or disjoint, so `hole`
/// is carved out by halving `net` down to it.
fn carve(net: IpNet, hole: &IpNet, out: &mut Vec<IpNet>) {
    if hole.contains(&net) {
        return;
    }
    if !net.contains(hole) {
        out.push(net);
        return;
    }
    let halves = net.subnets(net.prefix_len() + 1);
    for half in halves.into_iter().flatten() {
        carve(half, hole, out);
    }
}

/// `nets` less every net of `holes`.
pub fn subtract(nets: &[IpNet], holes: &[IpNet]) -> Vec<IpNet> {
    let mut remaining = nets.to_vec();
    for hole in holes {
        let mut next = Vec::new();
        for net in remaining {
            carve(net, hole, &mut next);
        }
        remaining = next;
    }
    remaining
}

/// Whether `nets` (empty: everywhere) less `except` holds a public
/// address.
pub fn admits_public(nets: &[IpNet], except: &[IpNet]) -> bool {
    let everywhere;
    let nets = if nets.is_empty() {
        everywhere = parse_all(&EVERYWHERE);
        &everywhere
    } else {
        nets
    };
    let mut holes = except.to_vec();
    holes.extend(parse_all(&PRIVATE));
    !subtract(nets, &holes).is_empty()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn nets(texts: &[&str]) -> Vec<IpNet> {
        texts.iter().map(|t| parse_net(t).expect("valid")).collect()
    }

    #[test]
    fn public_or_not() {
        let cases: [(&[&str], &[&str], bool); 11] = [
            (&[], &[], true),
            (&["0.0.0.0/0"], &[], true),
            (&["10.0.0.0/8"], &[], false),
            (&["10.1.2.3"], &[], false),
            (&["172.16.0.0/12", "192.168.1.0/24"], &[], false),
            (&["172.0.0.0/8"], &[], true),
            (&["8.8.8.8/32"], &[], true),
            (&["8.8.8.0/24"], &["8.8.8.0/24"], false),
            (
                &["0.0.0.0/0", "::/0"],
                &["0.0.0.0/1", "128.0.0.0/1", "2000::/3"],
                true,
            ),
            (&["fd00::/8", "fe80::1"], &[], false),
            (&["2001:db8::/32"], &[], true),
        ];
        for (allowed, except, want) in cases {
            assert_eq!(
                admits_public(&nets(allowed), &nets(except)),
                want,
                "{allowed:?} except {except:?}"
            );
        }
        // Everything public excepted, both families: nothing left.
        let all_public_excepted =
            subtract(&nets(&["0.0.0.0/0"]), &nets(&["0.0.0.0/1", "128.0.0.0/1"]));
        assert!(all_public_excepted.is_empty());
    }

    #[test]
    fn carving_leaves_the_rest() {
        let left = subtract(&nets(&["10.0.0.0/30"]), &nets(&["10.0.0.1/32"]));
        assert_eq!(left, nets(&["10.0.0.0/32", "10.0.0.2/31"]));
        assert!(parse_net("10.0.0.0/33").is_err());
        assert_eq!(
            parse_net("10.0.0.5/24").ok(),
            Some(nets(&["10.0.0.0/24"])[0])
        );
    }
}
