//! Lease validation as upstream's `pkg/apis/coordination/validation` (`ValidateLeaseSpec`):
//! a lease lasts a positive number of seconds and counts its transitions from zero.
//! (`strategy`/`preferredHolder` belong to the alpha CoordinatedLeaderElection gate, off
//! by default, so upstream drops them before validation.)

use serde_json::Value;

use super::field::invalid;
use crate::error::Cause;

pub fn validate_lease(obj: &Value, causes: &mut Vec<Cause>) {
    let Some(spec) = obj.get("spec") else {
        return;
    };
    if let Some(n) = spec.get("leaseDurationSeconds").and_then(Value::as_i64)
        && n <= 0
    {
        causes.push(invalid(
            "spec.leaseDurationSeconds",
            &Value::from(n),
            "must be greater than 0",
        ));
    }
    if let Some(n) = spec.get("leaseTransitions").and_then(Value::as_i64)
        && n < 0
    {
        causes.push(invalid(
            "spec.leaseTransitions",
            &Value::from(n),
            "must be greater than or equal to 0",
        ));
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn durations_are_positive_and_transitions_not_negative() {
        let mut causes = Vec::new();
        validate_lease(
            &json!({"spec": {"leaseDurationSeconds": 0, "leaseTransitions": -1}}),
            &mut causes,
        );
        let text: Vec<String> = causes
            .iter()
            .map(|c| format!("{}: {}", c.field, c.message))
            .collect();
        assert_eq!(
            text,
            [
                "spec.leaseDurationSeconds: Invalid value: 0: must be greater than 0",
                "spec.leaseTransitions: Invalid value: -1: must be greater than or equal to 0",
            ]
        );
        let mut causes = Vec::new();
        validate_lease(
            &json!({"spec": {"leaseDurationSeconds": 15, "leaseTransitions": 0}}),
            &mut causes,
        );
        assert!(causes.is_empty());
    }
}
