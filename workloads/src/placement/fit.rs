//! Whether a pod fits a node, as kube-scheduler's filter plugins decide it (NodeResourcesFit,
//! NodeAffinity, TaintToleration, NodeUnschedulable, InterPodAffinity for required
//! anti-affinity), a LeastAllocated score for the nodes that fit, and kube-scheduler's
//! `FailedScheduling` message when none does. Pure: everything comes from the objects.

use std::collections::BTreeMap;

use serde_json::Value;

/// The resources the fit checks, with kube-scheduler's names in its messages.
const CPU: &str = "cpu";
const MEMORY: &str = "memory";
const EPHEMERAL: &str = "ephemeral-storage";
const HOSTNAME: &str = "kubernetes.io/hostname";

/// Why one node does not fit, with whether preemption could help (upstream's `Unschedulable`
/// versus `UnschedulableAndUnresolvable`).
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord)]
pub struct Reason {
    pub text: String,
    pub resolvable: bool,
}

impl Reason {
    fn fixed(text: impl Into<String>) -> Self {
        Reason {
            text: text.into(),
            resolvable: false,
        }
    }
    fn preemptible(text: impl Into<String>) -> Self {
        Reason {
            text: text.into(),
            resolvable: true,
        }
    }
}

fn str_at<'a>(v: &'a Value, pointer: &str) -> &'a str {
    v.pointer(pointer).and_then(Value::as_str).unwrap_or("")
}

fn array_at<'a>(v: &'a Value, pointer: &str) -> &'a [Value] {
    v.pointer(pointer)
        .and_then(Value::as_array)
        .map_or(&[], Vec::as_slice)
}

/// A quantity in thousandths of its unit, rounded up (cpu compares in millicores, the
/// others in bytes; both orders agree). `None` for text that is not a quantity.
pub fn milli(quantity: &str) -> Option<i128> {
    let q = quantity.trim();
    let split = q
        .find(|c: char| !(c.is_ascii_digit() || c == '.' || c == '+' || c == '-'))
        .unwrap_or(q.len());
    let (num, suffix) = q.split_at(split);
    let (mantissa, exp10, pow2): (&str, i32, u32) = match suffix {
        "" => (num, 0, 0),
        "n" => (num, -9, 0),
        "u" => (num, -6, 0),
        "m" => (num, -3, 0),
        "k" => (num, 3, 0),
        "M" => (num, 6, 0),
        "G" => (num, 9, 0),
        "T" => (num, 12, 0),
        "P" => (num, 15, 0),
        "E" => (num, 18, 0),
        "Ki" => (num, 0, 10),
        "Mi" => (num, 0, 20),
        "Gi" => (num, 0, 30),
        "Ti" => (num, 0, 40),
        "Pi" => (num, 0, 50),
        "Ei" => (num, 0, 60),
        s if s.starts_with(['e', 'E']) => (num, s[1..].parse().ok()?, 0),
        _ => return None,
    };
    let negative = mantissa.starts_with('-');
    let digits = mantissa.trim_start_matches(['+', '-']);
    let (int, frac) = digits.split_once('.').unwrap_or((digits, ""));
    if int.is_empty() && frac.is_empty() {
        return None;
    }
    // value = (int.frac) * 10^exp10 * 2^pow2 * 1000, computed exactly then rounded up.
    let all: String = format!("{int}{frac}");
    let mut numerator: i128 = if all.is_empty() { 0 } else { all.parse().ok()? };
    numerator = numerator.checked_mul(1i128 << pow2)?;
    let scale = exp10 + 3 - i32::try_from(frac.len()).ok()?;
    let value = if scale >= 0 {
        numerator.checked_mul(10i128.checked_pow(scale.unsigned_abs())?)?
    } else {
        let d = 10i128.checked_pow(scale.unsigned_abs())?;
        (numerator + d - 1) / d
    };
    Some(if negative { -value } else { value })
}

/// The pod's requests as the scheduler counts them: the larger of the containers' sum and
/// each init container's (a restartable init container — a sidecar — adds to both), plus
/// `spec.overhead`.
pub fn pod_requests(pod: &Value) -> BTreeMap<String, i128> {
    let mut sum: BTreeMap<String, i128> = BTreeMap::new();
    let add = |into: &mut BTreeMap<String, i128>, c: &Value| {
        if let Some(req) = c.pointer("/resources/requests").and_then(Value::as_object) {
            for (k, v) in req {
                if let Some(q) = v.as_str().and_then(milli) {
                    *into.entry(k.clone()).or_default() += q;
                }
            }
        }
    };
    for c in array_at(pod, "/spec/containers") {
        add(&mut sum, c);
    }
    let mut sidecars: BTreeMap<String, i128> = BTreeMap::new();
    let mut init_max: BTreeMap<String, i128> = BTreeMap::new();
    for c in array_at(pod, "/spec/initContainers") {
        let mut one = BTreeMap::new();
        add(&mut one, c);
        if str_at(c, "/restartPolicy") == "Always" {
            for (k, v) in one {
                *sidecars.entry(k.clone()).or_default() += v;
                *sum.entry(k).or_default() += v;
            }
        } else {
            // A regular init container runs beside the sidecars started before it.
            for (k, v) in one {
                let at = v + sidecars.get(&k).copied().unwrap_or(0);
                let m = init_max.entry(k).or_default();
                *m = (*m).max(at);
            }
        }
    }
    for (k, v) in init_max {
        let s = sum.entry(k).or_default();
        *s = (*s).max(v);
    }
    if let Some(over) = pod.pointer("/spec/overhead").and_then(Value::as_object) {
        for (k, v) in over {
            if let Some(q) = v.as_str().and_then(milli) {
                *sum.entry(k.clone()).or_default() += q;
            }
        }
    }
    sum
}

/// Whether a pod still holds its node's resources (not Succeeded or Failed).
pub fn is_active(pod: &Value) -> bool {
    !matches!(str_at(pod, "/status/phase"), "Succeeded" | "Failed")
}

fn labels(obj: &Value) -> BTreeMap<&str, &str> {
    obj.pointer("/metadata/labels")
        .and_then(Value::as_object)
        .map(|m| {
            m.iter()
                .filter_map(|(k, v)| Some((k.as_str(), v.as_str()?)))
                .collect()
        })
        .unwrap_or_default()
}

/// One node-selector requirement (`In`, `NotIn`, `Exists`, `DoesNotExist`, `Gt`, `Lt`).
fn requirement_matches(req: &Value, value: Option<&str>) -> bool {
    let values: Vec<&str> = array_at(req, "/values")
        .iter()
        .filter_map(Value::as_str)
        .collect();
    match str_at(req, "/operator") {
        "In" => value.is_some_and(|v| values.contains(&v)),
        "NotIn" => value.is_none_or(|v| !values.contains(&v)),
        "Exists" => value.is_some(),
        "DoesNotExist" => value.is_none(),
        op @ ("Gt" | "Lt") => {
            let (Some(v), [bound]) = (value, values.as_slice()) else {
                return false;
            };
            match (v.parse::<i64>(), bound.parse::<i64>()) {
                (Ok(v), Ok(b)) => (op == "Gt" && v > b) || (op == "Lt" && v < b),
                _ => false,
            }
        }
        _ => false,
    }
}

/// A node selector term: all its expressions and fields match (an empty term matches
/// nothing, as upstream).
fn term_matches(term: &Value, node: &Value) -> bool {
    let exprs = array_at(term, "/matchExpressions");
    let fields = array_at(term, "/matchFields");
    if exprs.is_empty() && fields.is_empty() {
        return false;
    }
    let node_labels = labels(node);
    exprs
        .iter()
        .all(|r| requirement_matches(r, node_labels.get(str_at(r, "/key")).copied()))
        && fields.iter().all(|r| {
            let value =
                (str_at(r, "/key") == "metadata.name").then(|| str_at(node, "/metadata/name"));
            requirement_matches(r, value)
        })
}

/// `nodeSelector` and required node affinity (terms are ORed).
pub fn matches_node_selector(pod: &Value, node: &Value) -> bool {
    let node_labels = labels(node);
    if let Some(sel) = pod.pointer("/spec/nodeSelector").and_then(Value::as_object)
        && !sel
            .iter()
            .all(|(k, v)| node_labels.get(k.as_str()).copied() == v.as_str())
    {
        return false;
    }
    match pod.pointer(
        "/spec/affinity/nodeAffinity/requiredDuringSchedulingIgnoredDuringExecution/nodeSelectorTerms",
    ) {
        Some(Value::Array(terms)) => terms.iter().any(|t| term_matches(t, node)),
        _ => true,
    }
}

/// Whether `toleration` tolerates `taint` (upstream's `Toleration.ToleratesTaint`).
pub fn tolerates(toleration: &Value, taint: &Value) -> bool {
    let effect = str_at(toleration, "/effect");
    if !effect.is_empty() && effect != str_at(taint, "/effect") {
        return false;
    }
    let key = str_at(toleration, "/key");
    if !key.is_empty() && key != str_at(taint, "/key") {
        return false;
    }
    match str_at(toleration, "/operator") {
        "Exists" => true,
        "" | "Equal" => str_at(toleration, "/value") == str_at(taint, "/value"),
        _ => false,
    }
}

/// The first NoSchedule/NoExecute taint the pod does not tolerate.
fn untolerated_taint<'a>(pod: &Value, node: &'a Value) -> Option<&'a Value> {
    let tolerations = array_at(pod, "/spec/tolerations");
    array_at(node, "/spec/taints").iter().find(|t| {
        matches!(str_at(t, "/effect"), "NoSchedule" | "NoExecute")
            && !tolerations.iter().any(|tol| tolerates(tol, t))
    })
}

/// A label selector (`matchLabels`, `matchExpressions`) against labels.
fn label_selector_matches(sel: &Value, labels: &BTreeMap<&str, &str>) -> bool {
    if !sel.is_object() {
        return false;
    }
    let by_labels = sel
        .get("matchLabels")
        .and_then(Value::as_object)
        .is_none_or(|m| {
            m.iter()
                .all(|(k, v)| labels.get(k.as_str()).copied() == v.as_str())
        });
    by_labels
        && array_at(sel, "/matchExpressions")
            .iter()
            .all(|r| requirement_matches(r, labels.get(str_at(r, "/key")).copied()))
}

/// Whether an anti-affinity term of `owner` selects `other` (namespaces default to the
/// owner's; `namespaceSelector: {}` means all).
fn anti_term_selects(term: &Value, owner: &Value, other: &Value) -> bool {
    let ns = str_at(other, "/metadata/namespace");
    let listed: Vec<&str> = array_at(term, "/namespaces")
        .iter()
        .filter_map(Value::as_str)
        .collect();
    let all_namespaces = term
        .get("namespaceSelector")
        .and_then(Value::as_object)
        .is_some_and(|m| m.is_empty());
    let in_ns = all_namespaces
        || listed.contains(&ns)
        || (listed.is_empty()
            && term.get("namespaceSelector").is_none()
            && ns == str_at(owner, "/metadata/namespace"));
    in_ns
        && term
            .get("labelSelector")
            .is_some_and(|s| label_selector_matches(s, &labels(other)))
}

fn anti_terms(pod: &Value) -> &[Value] {
    array_at(
        pod,
        "/spec/affinity/podAntiAffinity/requiredDuringSchedulingIgnoredDuringExecution",
    )
}

/// A node with the pods bound to it: what the fit of one pod is judged against.
#[derive(Debug, Clone)]
pub struct Candidate<'a> {
    pub node: &'a Value,
    pub pods: Vec<&'a Value>,
}

fn label_of<'a>(node: &'a Value, key: &str) -> Option<&'a str> {
    node.pointer("/metadata/labels")
        .and_then(|l| l.get(key))
        .and_then(Value::as_str)
}

/// Required pod anti-affinity, both ways (upstream's InterPodAffinity filter): no pod in
/// the node's topology domain (the nodes sharing its `topologyKey` label value; for
/// `kubernetes.io/hostname` the node itself) may match one of the pod's terms, and the pod
/// may not match a term of a pod in that domain. A node without the label is no domain.
fn anti_affinity_violated(pod: &Value, node: &Value, cluster: &[Candidate]) -> bool {
    let same_domain = |key: &str, other: &Value| -> bool {
        match (label_of(node, key), label_of(other, key)) {
            (Some(a), Some(b)) => a == b,
            // Every node is its own hostname domain, labelled or not.
            _ => {
                key == HOSTNAME && str_at(node, "/metadata/name") == str_at(other, "/metadata/name")
            }
        }
    };
    cluster.iter().any(|c| {
        let active = c.pods.iter().copied().filter(|p| is_active(p));
        active.into_iter().any(|other| {
            anti_terms(pod).iter().any(|t| {
                same_domain(str_at(t, "/topologyKey"), c.node) && anti_term_selects(t, pod, other)
            }) || anti_terms(other).iter().any(|t| {
                same_domain(str_at(t, "/topologyKey"), c.node) && anti_term_selects(t, other, pod)
            })
        })
    })
}

fn ready(node: &Value) -> bool {
    array_at(node, "/status/conditions")
        .iter()
        .any(|c| str_at(c, "/type") == "Ready" && str_at(c, "/status") == "True")
}

/// What one node offers and already holds, computed once per placement round rather than
/// once per pod and node (at 1,000 nodes × 30 pods each, summing every node's pods for
/// every pod placed dominated placement).
#[derive(Debug, Clone, Default)]
pub struct NodeState {
    /// `status.allocatable`, in thousandths.
    pub allocatable: BTreeMap<String, i128>,
    pub ready: bool,
    /// Active (not finished) pods bound to the node.
    pub active: usize,
    /// Their summed requests.
    pub requested: BTreeMap<String, i128>,
    /// Their cpu and memory requests with upstream's non-zero defaults (for the score).
    pub nonzero: (i128, i128),
    /// Whether one of them has required anti-affinity terms.
    pub anti_affinity: bool,
}

/// A request of zero counts as upstream's non-zero defaults for scoring (100m cpu, 200Mi).
pub(crate) fn nonzero_requests(reqs: &BTreeMap<String, i128>) -> (i128, i128) {
    let cpu = match reqs.get(CPU).copied().unwrap_or(0) {
        0 => 100,
        v => v,
    };
    let memory = match reqs.get(MEMORY).copied().unwrap_or(0) {
        0 => 200 * 1024 * 1024 * 1000,
        v => v,
    };
    (cpu, memory)
}

impl NodeState {
    /// The node's allocatable and readiness, and the pods bound to it.
    pub fn new(node: &Value, bound: &[&Value]) -> Self {
        let allocatable = node
            .pointer("/status/allocatable")
            .and_then(Value::as_object)
            .map(|m| {
                m.iter()
                    .filter_map(|(k, v)| Some((k.clone(), v.as_str().and_then(milli)?)))
                    .collect()
            })
            .unwrap_or_default();
        let mut state = NodeState {
            allocatable,
            ready: ready(node),
            ..NodeState::default()
        };
        for pod in bound {
            state.add(pod);
        }
        state
    }

    /// Counts one more pod bound to the node (a finished one holds nothing).
    pub fn add(&mut self, pod: &Value) {
        if !is_active(pod) {
            return;
        }
        self.add_requests(&pod_requests(pod), !anti_terms(pod).is_empty());
    }

    /// Counts one more active pod with these requests (`pod_requests`) bound to the node.
    pub fn add_requests(&mut self, reqs: &BTreeMap<String, i128>, anti_affinity: bool) {
        let (cpu, memory) = nonzero_requests(reqs);
        self.nonzero.0 += cpu;
        self.nonzero.1 += memory;
        for (k, v) in reqs {
            *self.requested.entry(k.clone()).or_default() += v;
        }
        self.active += 1;
        self.anti_affinity |= anti_affinity;
    }
}

/// Whether the pod has required anti-affinity terms (then every node's pods matter).
pub fn has_anti_affinity(pod: &Value) -> bool {
    !anti_terms(pod).is_empty()
}

/// Why `pod` does not fit `cluster[index]`, given the pods bound to every node (terminal
/// ones are ignored); empty when it fits.
pub fn unfit(pod: &Value, cluster: &[Candidate], index: usize) -> Vec<Reason> {
    let Some(here) = cluster.get(index) else {
        return vec![Reason::fixed("node(s) not found")];
    };
    let state = NodeState::new(here.node, &here.pods);
    unfit_with(pod, &pod_requests(pod), here.node, &state, Some(cluster))
}

/// [`unfit`] against a precomputed [`NodeState`]; `want` is `pod_requests(pod)`. The
/// anti-affinity filter runs against `cluster` when given: pass it when the pod or any
/// bound pod has required anti-affinity terms (otherwise it cannot reject).
pub fn unfit_with(
    pod: &Value,
    want: &BTreeMap<String, i128>,
    node: &Value,
    state: &NodeState,
    cluster: Option<&[Candidate]>,
) -> Vec<Reason> {
    // kube-scheduler stops at the first filter plugin that rejects a node, in its default
    // order: NodeUnschedulable, TaintToleration, NodeAffinity, NodeResourcesFit,
    // InterPodAffinity. Only that plugin's reasons count in the message.
    if node.pointer("/spec/unschedulable").and_then(Value::as_bool) == Some(true)
        && !tolerated_by(pod, "node.kubernetes.io/unschedulable")
    {
        return vec![Reason::fixed("node(s) were unschedulable")];
    }
    if let Some(t) = untolerated_taint(pod, node) {
        return vec![Reason::fixed(format!(
            "node(s) had untolerated taint {{{}: {}}}",
            str_at(t, "/key"),
            str_at(t, "/value")
        ))];
    }
    // The lifecycle controller's not-ready taint may lag the condition.
    if !state.ready && !tolerated_by(pod, "node.kubernetes.io/not-ready") {
        return vec![Reason::fixed(
            "node(s) had untolerated taint {node.kubernetes.io/not-ready: }",
        )];
    }
    if !matches_node_selector(pod, node) {
        return vec![Reason::fixed(
            "node(s) didn't match Pod's node affinity/selector",
        )];
    }
    let allocatable = |name: &str| state.allocatable.get(name).copied();
    let used = &state.requested;
    let mut out = Vec::new();
    if let Some(max) = allocatable("pods")
        && i128::try_from(state.active + 1).unwrap_or(i128::MAX) * 1000 > max
    {
        out.push(Reason::preemptible("Too many pods"));
    }
    for name in [CPU, MEMORY, EPHEMERAL] {
        let need = want.get(name).copied().unwrap_or(0);
        if need == 0 {
            continue;
        }
        let free = allocatable(name).unwrap_or(0) - used.get(name).copied().unwrap_or(0);
        if need > free {
            out.push(Reason::preemptible(format!("Insufficient {name}")));
        }
    }
    // Extended resources (e.g. nvidia.com/gpu, hugepages-2Mi) a node must advertise.
    for (name, need) in want {
        if *need == 0 || !(name.starts_with("hugepages-") || name.contains('/')) {
            continue;
        }
        let free = allocatable(name).unwrap_or(0) - used.get(name).copied().unwrap_or(0);
        if *need > free {
            out.push(Reason::preemptible(format!("Insufficient {name}")));
        }
    }
    if !out.is_empty() {
        return out;
    }
    if let Some(cluster) = cluster
        && anti_affinity_violated(pod, node, cluster)
    {
        return vec![Reason::preemptible(
            "node(s) didn't match pod anti-affinity rules",
        )];
    }
    Vec::new()
}

/// Whether the pod tolerates the NoSchedule taint `key` (with no value).
pub(crate) fn tolerated_by(pod: &Value, key: &str) -> bool {
    let taint = serde_json::json!({"key": key, "effect": "NoSchedule"});
    array_at(pod, "/spec/tolerations")
        .iter()
        .any(|t| tolerates(t, &taint))
}

/// LeastAllocated score (0–100): the mean share of cpu and memory left free after placing
/// the pod. A request of zero counts as upstream's non-zero defaults (100m cpu, 200Mi).
pub fn score(pod: &Value, node: &Value, bound: &[&Value]) -> i64 {
    score_with(&pod_requests(pod), &NodeState::new(node, bound))
}

/// [`score`] against a precomputed [`NodeState`]; `want` is `pod_requests(pod)`.
pub fn score_with(want: &BTreeMap<String, i128>, state: &NodeState) -> i64 {
    let cap = |name: &str| state.allocatable.get(name).copied().unwrap_or(0);
    least_allocated(
        (cap(CPU), cap(MEMORY)),
        state.nonzero,
        nonzero_requests(want),
    )
}

/// The LeastAllocated score from the node's cpu and memory allocatable, the non-zero
/// requests already on it and the pod's (see [`score_with`]).
pub fn least_allocated(cap: (i128, i128), used: (i128, i128), want: (i128, i128)) -> i64 {
    let mut total = 0i128;
    for (cap, requested) in [(cap.0, used.0 + want.0), (cap.1, used.1 + want.1)] {
        if cap > 0 && requested <= cap {
            total += (cap - requested) * 100 / cap;
        }
    }
    i64::try_from(total / 2).unwrap_or(0)
}

/// kube-scheduler's FailedScheduling message: each reason with how many nodes gave it,
/// sorted, then the preemption post-filter's verdict (no lower-priority victims here, so
/// nodes whose reasons preemption could resolve say so, the rest "not helpful").
pub fn failed_scheduling_message(total: usize, per_node: &[Vec<Reason>]) -> String {
    if total == 0 {
        return "no nodes available to schedule pods".to_string();
    }
    let mut counts: BTreeMap<&str, usize> = BTreeMap::new();
    let (mut resolvable, mut unhelpful) = (0, 0);
    for reasons in per_node {
        for r in reasons {
            *counts.entry(r.text.as_str()).or_default() += 1;
        }
        if !reasons.is_empty() && reasons.iter().all(|r| r.resolvable) {
            resolvable += 1;
        } else {
            unhelpful += 1;
        }
    }
    let mut parts: Vec<String> = counts.iter().map(|(r, n)| format!("{n} {r}")).collect();
    parts.sort();
    let mut preemption = Vec::new();
    if resolvable > 0 {
        preemption.push(format!(
            "{resolvable} No preemption victims found for incoming pod"
        ));
    }
    if unhelpful > 0 {
        preemption.push(format!(
            "{unhelpful} Preemption is not helpful for scheduling"
        ));
    }
    preemption.sort();
    format!(
        "0/{total} nodes are available: {}. preemption: 0/{total} nodes are available: {}.",
        parts.join(", "),
        preemption.join(", ")
    )
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn node(name: &str, cpu: &str, memory: &str) -> Value {
        json!({"metadata": {"name": name, "labels": {"kubernetes.io/hostname": name}},
               "status": {"allocatable": {"cpu": cpu, "memory": memory, "pods": "110",
                                          "ephemeral-storage": "10Gi"},
                          "conditions": [{"type": "Ready", "status": "True"}]}})
    }

    fn pod(cpu: &str) -> Value {
        json!({"metadata": {"name": "p", "namespace": "d"},
               "spec": {"containers": [{"name": "c", "resources": {"requests": {"cpu": cpu}}}]}})
    }

    fn reasons(pod: &Value, node: &Value, bound: &[&Value]) -> Vec<String> {
        let cluster = [Candidate {
            node,
            pods: bound.to_vec(),
        }];
        unfit(pod, &cluster, 0)
            .into_iter()
            .map(|r| r.text)
            .collect()
    }

    #[test]
    fn quantities_compare_in_thousandths() {
        assert_eq!(milli("100m"), Some(100));
        assert_eq!(milli("2"), Some(2000));
        assert_eq!(milli("1.5"), Some(1500));
        assert_eq!(milli("1Ki"), Some(1_024_000));
        assert_eq!(milli("1G"), Some(1_000_000_000_000));
        assert_eq!(milli("1e3"), Some(1_000_000));
        assert_eq!(milli("1n"), Some(1));
        assert_eq!(milli("x"), None);
    }

    #[test]
    fn init_containers_count_by_their_max_and_overhead_adds() {
        let p = json!({"spec": {
            "containers": [{"resources": {"requests": {"cpu": "100m"}}},
                           {"resources": {"requests": {"cpu": "200m"}}}],
            "initContainers": [{"resources": {"requests": {"cpu": "500m", "memory": "1Mi"}}},
                               {"resources": {"requests": {"cpu": "400m"}}}],
            "overhead": {"cpu": "10m"}}});
        let r = pod_requests(&p);
        assert_eq!(r["cpu"], 510);
        assert_eq!(r["memory"], 1024 * 1024 * 1000);
    }

    #[test]
    fn requests_are_checked_against_allocatable_minus_active_pods() {
        let n = node("n1", "1", "1Gi");
        assert!(reasons(&pod("600m"), &n, &[]).is_empty());
        let running = pod("600m");
        assert_eq!(reasons(&pod("600m"), &n, &[&running]), ["Insufficient cpu"]);
        let mut done = pod("600m");
        done["status"] = json!({"phase": "Succeeded"});
        assert!(reasons(&pod("600m"), &n, &[&done]).is_empty());
        let mut full = n.clone();
        full["status"]["allocatable"]["pods"] = json!("1");
        assert_eq!(reasons(&pod("1m"), &full, &[&done]), Vec::<String>::new());
        assert_eq!(reasons(&pod("1m"), &full, &[&running]), ["Too many pods"]);
    }

    #[test]
    fn selectors_affinity_taints_and_cordons() {
        let mut n = node("n1", "4", "4Gi");
        n["metadata"]["labels"]["disk"] = json!("ssd");
        n["metadata"]["labels"]["gen"] = json!("5");
        let mut p = pod("1m");
        p["spec"]["nodeSelector"] = json!({"disk": "ssd"});
        assert!(reasons(&p, &n, &[]).is_empty());
        p["spec"]["nodeSelector"] = json!({"disk": "hdd"});
        assert_eq!(
            reasons(&p, &n, &[]),
            ["node(s) didn't match Pod's node affinity/selector"]
        );

        let affinity = |exprs: Value, fields: Value| {
            json!({"nodeAffinity": {
            "requiredDuringSchedulingIgnoredDuringExecution": {"nodeSelectorTerms": [
                {"matchExpressions": exprs, "matchFields": fields}]}}})
        };
        let mut p = pod("1m");
        for (exprs, fields, fits) in [
            (
                json!([{"key": "gen", "operator": "Gt", "values": ["4"]}]),
                json!([]),
                true,
            ),
            (
                json!([{"key": "gen", "operator": "Lt", "values": ["4"]}]),
                json!([]),
                false,
            ),
            (
                json!([{"key": "disk", "operator": "In", "values": ["ssd", "nvme"]}]),
                json!([]),
                true,
            ),
            (
                json!([{"key": "disk", "operator": "NotIn", "values": ["ssd"]}]),
                json!([]),
                false,
            ),
            (
                json!([{"key": "gpu", "operator": "DoesNotExist"}]),
                json!([]),
                true,
            ),
            (
                json!([{"key": "gpu", "operator": "Exists"}]),
                json!([]),
                false,
            ),
            (
                json!([]),
                json!([{"key": "metadata.name", "operator": "In", "values": ["n1"]}]),
                true,
            ),
            (
                json!([]),
                json!([{"key": "metadata.name", "operator": "In", "values": ["n2"]}]),
                false,
            ),
            (json!([]), json!([]), false),
        ] {
            p["spec"]["affinity"] = affinity(exprs.clone(), fields.clone());
            assert_eq!(reasons(&p, &n, &[]).is_empty(), fits, "{exprs} {fields}");
        }

        let mut tainted = node("n1", "4", "4Gi");
        tainted["spec"] = json!({"taints": [{"key": "dedicated", "value": "gpu", "effect": "NoSchedule"},
                                            {"key": "soft", "effect": "PreferNoSchedule"}]});
        let mut p = pod("1m");
        assert_eq!(
            reasons(&p, &tainted, &[]),
            ["node(s) had untolerated taint {dedicated: gpu}"]
        );
        p["spec"]["tolerations"] = json!([{"key": "dedicated", "operator": "Equal", "value": "gpu",
                                           "effect": "NoSchedule"}]);
        assert!(reasons(&p, &tainted, &[]).is_empty());

        let mut cordoned = node("n1", "4", "4Gi");
        cordoned["spec"] = json!({"unschedulable": true});
        assert_eq!(
            reasons(&pod("1m"), &cordoned, &[]),
            ["node(s) were unschedulable"]
        );

        let mut not_ready = node("n1", "4", "4Gi");
        not_ready["status"]["conditions"][0]["status"] = json!("Unknown");
        assert_eq!(
            reasons(&pod("1m"), &not_ready, &[]),
            ["node(s) had untolerated taint {node.kubernetes.io/not-ready: }"]
        );
    }

    #[test]
    fn required_anti_affinity_keeps_matching_pods_apart() {
        let n = node("n1", "4", "4Gi");
        let mut p = pod("1m");
        p["metadata"]["labels"] = json!({"app": "web"});
        p["spec"]["affinity"] = json!({"podAntiAffinity": {"requiredDuringSchedulingIgnoredDuringExecution": [
            {"labelSelector": {"matchLabels": {"app": "web"}}, "topologyKey": HOSTNAME}]}});
        let mut other = p.clone();
        other["metadata"]["name"] = json!("q");
        assert_eq!(
            reasons(&p, &n, &[&other]),
            ["node(s) didn't match pod anti-affinity rules"]
        );
        // Another namespace is not selected by default.
        other["metadata"]["namespace"] = json!("e");
        assert!(reasons(&p, &n, &[&other]).is_empty());
        // The existing pod's anti-affinity also repels a matching newcomer.
        let mut plain = pod("1m");
        plain["metadata"]["labels"] = json!({"app": "web"});
        other["metadata"]["namespace"] = json!("d");
        assert_eq!(
            reasons(&plain, &n, &[&other]),
            ["node(s) didn't match pod anti-affinity rules"]
        );
    }

    #[test]
    fn least_allocated_prefers_the_emptier_node() {
        let n = node("n1", "2", "4Gi");
        let busy = pod("1");
        assert!(score(&pod("100m"), &n, &[]) > score(&pod("100m"), &n, &[&busy]));
    }

    #[test]
    fn the_message_is_kube_schedulers() {
        let per_node = vec![
            vec![Reason::preemptible("Insufficient cpu")],
            vec![Reason::fixed(
                "node(s) didn't match Pod's node affinity/selector",
            )],
            vec![Reason::fixed(
                "node(s) didn't match Pod's node affinity/selector",
            )],
        ];
        assert_eq!(
            failed_scheduling_message(3, &per_node),
            "0/3 nodes are available: 1 Insufficient cpu, 2 node(s) didn't match Pod's node affinity/selector. \
             preemption: 0/3 nodes are available: 1 No preemption victims found for incoming pod, \
             2 Preemption is not helpful for scheduling."
        );
        assert_eq!(
            failed_scheduling_message(1, &[vec![Reason::fixed("node(s) were unschedulable")]]),
            "0/1 nodes are available: 1 node(s) were unschedulable. preemption: 0/1 nodes are available: \
             1 Preemption is not helpful for scheduling."
        );
        assert_eq!(
            failed_scheduling_message(0, &[]),
            "no nodes available to schedule pods"
        );
    }
}
