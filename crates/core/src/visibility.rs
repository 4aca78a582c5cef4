//! Zendesk user segments → helpdex visibility. Pure and fail-closed: whatever is not understood
//! becomes [`Visibility::Internal`].

use crate::model::{ACCESS_PUBLIC, ACCESS_SIGNED_IN, ACCESS_STAFF, Visibility, access_segment};
use serde::{Deserialize, Serialize};
use std::collections::HashMap;

/// What helpdex knows of one Zendesk user segment.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct UserSegment {
    /// Segment id.
    pub id: u64,
    /// Display name (localized for built-ins).
    pub name: String,
    /// `signed_in_users` or `staff`.
    pub user_type: String,
    /// Built-in segment (Signed-in users, Agents and admins).
    pub built_in: bool,
}

/// The decision for one article, with the rule that made it (shown by `helpdex explain`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Decision {
    /// Most permissive visibility among the article's user segments.
    pub visibility: Visibility,
    /// Access tokens the indexed passages carry; a caller needs one of them.
    pub access: Vec<String>,
    /// Human-readable reason.
    pub rule: String,
}

/// Stands, among stored segment ids, for "the Zendesk record did not say who may view it"
/// (neither `user_segment_ids` nor `user_segment_id`). No real segment has this id, and
/// [`decide`] maps it to internal wherever it appears: absence never means "everyone".
pub const UNSTATED_SEGMENTS: u64 = u64::MAX;

/// Decides visibility from an article's `user_segment_ids`.
///
/// `segments` is `None` when the segment list could not be read (a token without Guide admin
/// rights): any segmented article is then internal. `restricted_help_center` is true when the
/// brand's whole help center requires sign-in, so nothing is anonymous-public.
pub fn decide(
    segment_ids: &[u64],
    segments: Option<&HashMap<u64, UserSegment>>,
    restricted_help_center: bool,
) -> Decision {
    let staff = ACCESS_STAFF.to_string();
    if segment_ids.contains(&UNSTATED_SEGMENTS) {
        return Decision {
            visibility: Visibility::Internal,
            access: vec![staff],
            rule: "the zendesk record did not say who may view it (no user_segment_ids): treated as internal".into(),
        };
    }
    if segment_ids.is_empty() {
        if restricted_help_center {
            return Decision {
                visibility: Visibility::SignedIn,
                access: vec![ACCESS_SIGNED_IN.into(), staff],
                rule: "no user segment, but the help center is restricted to signed-in users"
                    .into(),
            };
        }
        return Decision {
            visibility: Visibility::Public,
            access: vec![ACCESS_PUBLIC.into(), staff],
            rule: "no user segment: visible to everyone".into(),
        };
    }
    let Some(known) = segments else {
        return Decision {
            visibility: Visibility::Internal,
            access: vec![staff],
            rule: format!(
                "user segments {segment_ids:?} could not be read (token lacks Guide admin rights): treated as internal"
            ),
        };
    };
    let mut best = Visibility::Internal;
    let mut access = Vec::new();
    let mut reasons = Vec::new();
    for id in segment_ids {
        let (vis, token, why) = match known.get(id) {
            None => (
                Visibility::Internal,
                None,
                format!("segment {id} is unknown: internal"),
            ),
            Some(s) if s.user_type == "staff" => (
                Visibility::Internal,
                None,
                format!("segment {id} '{}' is staff-only", s.name),
            ),
            Some(s) if s.user_type == "signed_in_users" && s.built_in => (
                Visibility::SignedIn,
                Some(ACCESS_SIGNED_IN.to_string()),
                format!(
                    "segment {id} '{}' is the built-in signed-in segment",
                    s.name
                ),
            ),
            Some(s) if s.user_type == "signed_in_users" => (
                Visibility::Restricted,
                Some(access_segment(*id)),
                format!("segment {id} '{}' is a custom end-user segment", s.name),
            ),
            Some(s) => (
                Visibility::Internal,
                None,
                format!(
                    "segment {id} '{}' has unknown user_type '{}': internal",
                    s.name, s.user_type
                ),
            ),
        };
        best = best.min(vis);
        if let Some(t) = token
            && !access.contains(&t)
        {
            access.push(t);
        }
        reasons.push(why);
    }
    access.push(staff);
    Decision {
        visibility: best,
        access,
        rule: format!("{}; most permissive wins: {best}", reasons.join("; ")),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn segs() -> HashMap<u64, UserSegment> {
        let mk = |id, user_type: &str, built_in| UserSegment {
            id,
            name: format!("s{id}"),
            user_type: user_type.into(),
            built_in,
        };
        [
            (1, mk(1, "signed_in_users", true)),
            (2, mk(2, "staff", true)),
            (3, mk(3, "signed_in_users", false)),
            (4, mk(4, "staff", false)),
        ]
        .into_iter()
        .collect()
    }

    #[test]
    fn maps_zendesk_signals() {
        let s = segs();
        assert_eq!(decide(&[], Some(&s), false).visibility, Visibility::Public);
        assert_eq!(decide(&[], Some(&s), true).visibility, Visibility::SignedIn);
        assert_eq!(
            decide(&[1], Some(&s), false).visibility,
            Visibility::SignedIn
        );
        assert_eq!(
            decide(&[2], Some(&s), false).visibility,
            Visibility::Internal
        );
        let r = decide(&[3], Some(&s), false);
        assert_eq!(r.visibility, Visibility::Restricted);
        assert_eq!(r.access, vec!["segment:3", "staff"]);
        assert_eq!(
            decide(&[4], Some(&s), false).visibility,
            Visibility::Internal
        );
        assert_eq!(
            decide(&[99], Some(&s), false).visibility,
            Visibility::Internal
        );
    }

    #[test]
    fn most_permissive_wins() {
        let s = segs();
        let d = decide(&[2, 3, 1], Some(&s), false);
        assert_eq!(d.visibility, Visibility::SignedIn);
        assert_eq!(d.access, vec!["segment:3", "signed_in", "staff"]);
    }

    #[test]
    fn an_unstated_audience_is_internal_even_beside_public_segments() {
        let s = segs();
        for ids in [vec![UNSTATED_SEGMENTS], vec![1, UNSTATED_SEGMENTS]] {
            let d = decide(&ids, Some(&s), false);
            assert_eq!(d.visibility, Visibility::Internal);
            assert_eq!(d.access, vec!["staff"]);
        }
        assert_eq!(
            decide(&[UNSTATED_SEGMENTS], None, false).visibility,
            Visibility::Internal
        );
    }

    #[test]
    fn fails_closed_without_segments() {
        let d = decide(&[1], None, false);
        assert_eq!(d.visibility, Visibility::Internal);
        assert_eq!(d.access, vec!["staff"]);
        assert_eq!(decide(&[], None, false).visibility, Visibility::Public);
    }
}
