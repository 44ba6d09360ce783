//! Which member is a key's home: the one whose kad key is XOR-closest to the key's
//! sha256, among the members that finished their first sync (a node still catching up
//! could accept a create for an object it has not seen yet).

use std::collections::BTreeMap;

use libp2p::PeerId;
use libp2p::kad::{KBucketDistance, KBucketKey};

/// The members this node currently sees, besides itself, and whether each is ready.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct MemberView {
    pub peers: BTreeMap<PeerId, bool>,
}

/// XOR distance between sha256(key) and the peer's kad key.
pub fn distance(key: &[u8], peer: &PeerId) -> KBucketDistance {
    let target = KBucketKey::new(key.to_vec());
    KBucketKey::from(*peer).distance(&target)
}

fn closest<'a>(key: &[u8], candidates: impl Iterator<Item = &'a PeerId>) -> Option<PeerId> {
    candidates
        .map(|p| (distance(key, p), *p))
        .min()
        .map(|(_, p)| p)
}

/// The home of `key`: the closest ready member (this node counts when `self_ready`);
/// when no member is ready, the closest member at all.
pub fn home_of(key: &[u8], local: PeerId, self_ready: bool, view: &MemberView) -> PeerId {
    let ready = view
        .peers
        .iter()
        .filter(|(_, ready)| **ready)
        .map(|(p, _)| p)
        .chain(self_ready.then_some(&local));
    closest(key, ready)
        .or_else(|| closest(key, view.peers.keys().chain(std::iter::once(&local))))
        .unwrap_or(local)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_node_picks_the_same_home_and_homes_spread() {
        let peers: Vec<PeerId> = (0..5).map(|_| PeerId::random()).collect();
        let views: Vec<(PeerId, MemberView)> = peers
            .iter()
            .map(|me| {
                let others = peers
                    .iter()
                    .filter(|p| *p != me)
                    .map(|p| (*p, true))
                    .collect();
                (*me, MemberView { peers: others })
            })
            .collect();
        let mut homes = std::collections::BTreeSet::new();
        for i in 0..200 {
            let key = format!("/apps/deployments/default/web-{i}");
            let first = home_of(key.as_bytes(), views[0].0, true, &views[0].1);
            for (me, view) in &views {
                assert_eq!(home_of(key.as_bytes(), *me, true, view), first);
            }
            homes.insert(first);
        }
        assert_eq!(homes.len(), peers.len(), "200 keys land on every member");
    }

    #[test]
    fn members_still_catching_up_are_not_homes() {
        let me = PeerId::random();
        let other = PeerId::random();
        let key = (0..)
            .map(|i| format!("/core/pods/default/p{i}"))
            .find(|k| distance(k.as_bytes(), &other) < distance(k.as_bytes(), &me))
            .unwrap();
        let mut view = MemberView::default();
        view.peers.insert(other, false);
        assert_eq!(home_of(key.as_bytes(), me, true, &view), me);
        view.peers.insert(other, true);
        assert_eq!(home_of(key.as_bytes(), me, true, &view), other);
        // Nobody ready at all: the plain closest member.
        view.peers.insert(other, false);
        assert_eq!(home_of(key.as_bytes(), me, false, &view), other);
    }
}
