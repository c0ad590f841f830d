//! Kubernetes carries its monitoring (issue 22, item 7): the manifests of deploy/k8s parsed as
//! YAML and checked for what they do, not how they are written. The copies kustomize ships
//! (the PrometheusRule, the dashboard) equal their sources, a config change is set to roll
//! the pods, selectors select churnwatch's pods, ports resolve to the container's and the
//! config's. What needs kustomize itself (the rendered objects, the pod template changing
//! with the config) is checked by `.ci/deploy-check`; docs/kubernetes.md explains the
//! choices.

use churnwatch::config::Config;
use std::collections::BTreeSet;
use yaml_rust2::{Yaml, YamlLoader};

fn read(path: &str) -> String {
    let full = format!("{}/{path}", env!("CARGO_MANIFEST_DIR"));
    std::fs::read_to_string(&full).unwrap_or_else(|e| panic!("{full}: {e}"))
}

fn port(addr: &str) -> u16 {
    addr.rsplit_once(':')
        .and_then(|(_, p)| p.parse().ok())
        .unwrap_or_else(|| panic!("`{addr}` has no port"))
}

/// The one YAML document of `path`.
fn yaml(path: &str) -> Yaml {
    let mut docs = YamlLoader::load_from_str(&read(path)).unwrap_or_else(|e| panic!("{path}: {e}"));
    assert_eq!(docs.len(), 1, "{path}: one document");
    docs.remove(0)
}

/// Whether the PrometheusRule text `rule` carries exactly the rules file `alerts`: its
/// `spec` parses to the same tree (comments and layout aside).
fn rule_carries(alerts: &str, rule: &str) -> Result<(), String> {
    let parse = |what: &str, text: &str| -> Result<Yaml, String> {
        let mut docs = YamlLoader::load_from_str(text).map_err(|e| format!("{what}: {e}"))?;
        match docs.len() {
            1 => Ok(docs.remove(0)),
            n => Err(format!("{what}: {n} documents")),
        }
    };
    let (alerts, rule) = (parse("alerts", alerts)?, parse("rule", rule)?);
    if rule["apiVersion"].as_str() != Some("monitoring.coreos.com/v1")
        || rule["kind"].as_str() != Some("PrometheusRule")
    {
        return Err("not a monitoring.coreos.com/v1 PrometheusRule".into());
    }
    if rule["spec"] != alerts {
        return Err("its spec is not alerts.yml: run deploy/k8s/generate".into());
    }
    Ok(())
}

#[test]
fn the_prometheusrule_carries_the_alert_rules() {
    let alerts = read("deploy/prometheus/alerts.yml");
    let rule = read("deploy/k8s/prometheusrule.yaml");
    rule_carries(&alerts, &rule).unwrap();
    assert!(yaml("deploy/prometheus/alerts.yml")["groups"][0]["rules"]
        .as_vec()
        .is_some_and(|r| r.len() >= 19));
    // The check sees a threshold changed on one side only, and a rule added.
    let changed = alerts.replace("> 0.9\n", "> 0.8\n");
    assert_ne!(changed, alerts);
    assert!(rule_carries(&changed, &rule).is_err());
    let more = format!(
        "{alerts}\n      - alert: Extra\n        expr: vector(1)\n        labels: {{severity: warning}}\n"
    );
    assert!(rule_carries(&more, &rule).is_err());
}

#[test]
fn the_dashboard_configmap_carries_the_dashboard_for_the_sidecar() {
    let k = yaml("deploy/k8s/kustomization.yaml");
    let generator = k["configMapGenerator"]
        .as_vec()
        .expect("configMapGenerator")
        .iter()
        .find(|g| g["name"].as_str() == Some("churnwatch-dashboard"))
        .expect("a churnwatch-dashboard ConfigMap");
    assert_eq!(
        generator["options"]["labels"]["grafana_dashboard"].as_str(),
        Some("1"),
        "the Grafana sidecar's label"
    );
    // No hash suffix: a renamed ConfigMap would leave the old one (same uid) behind.
    assert_eq!(
        generator["options"]["disableNameSuffixHash"].as_bool(),
        Some(true)
    );
    let files = generator["files"].as_vec().expect("files");
    let [file] = &files[..] else {
        panic!("one file: {files:?}")
    };
    let copy = file.as_str().expect("a path");
    let json = |path: &str| -> serde_json::Value { serde_json::from_str(&read(path)).unwrap() };
    assert_eq!(
        json(&format!("deploy/k8s/{copy}")),
        json("deploy/grafana/dashboards/churnwatch.json"),
        "deploy/k8s/{copy} is not the dashboard: run deploy/k8s/generate"
    );
    // The config's generator keeps the hash suffix, so a config change rolls the pods
    // (.ci/deploy-check renders both and compares the pod templates).
    let config = k["configMapGenerator"]
        .as_vec()
        .unwrap()
        .iter()
        .find(|g| g["name"].as_str() == Some("churnwatch-config"))
        .expect("churnwatch-config");
    assert!(config["options"]["disableNameSuffixHash"].as_bool() != Some(true));
}

/// The pod template's labels, and its container's ports by name.
fn pod_labels_and_ports() -> (Yaml, Vec<(String, i64)>) {
    let d = yaml("deploy/k8s/deployment.yaml");
    let template = &d["spec"]["template"];
    let ports = template["spec"]["containers"][0]["ports"]
        .as_vec()
        .expect("container ports")
        .iter()
        .map(|p| {
            let name = p["name"].as_str().expect("named ports").to_string();
            (name, p["containerPort"].as_i64().expect("a port number"))
        })
        .collect();
    (template["metadata"]["labels"].clone(), ports)
}

/// Whether `match_labels` selects a pod with `labels`.
fn selects(match_labels: &Yaml, labels: &Yaml) -> bool {
    let (Some(want), Some(have)) = (match_labels.as_hash(), labels.as_hash()) else {
        return false;
    };
    !want.is_empty() && want.iter().all(|(k, v)| have.get(k) == Some(v))
}

#[test]
fn pods_spread_over_nodes_and_zones() {
    let (labels, _) = pod_labels_and_ports();
    let d = yaml("deploy/k8s/deployment.yaml");
    let constraints = d["spec"]["template"]["spec"]["topologySpreadConstraints"]
        .as_vec()
        .expect("topologySpreadConstraints");
    let by_key = |key: &str| {
        constraints
            .iter()
            .find(|c| c["topologyKey"].as_str() == Some(key))
            .unwrap_or_else(|| panic!("no spread over {key}"))
    };
    for key in ["kubernetes.io/hostname", "topology.kubernetes.io/zone"] {
        let c = by_key(key);
        assert!(
            selects(&c["labelSelector"]["matchLabels"], &labels),
            "{key}: the selector does not count churnwatch's pods"
        );
        assert_eq!(c["maxSkew"].as_i64(), Some(1), "{key}");
    }
    // Two pods on one node would defeat the second replica; a zone label may be missing.
    assert_eq!(
        by_key("kubernetes.io/hostname")["whenUnsatisfiable"].as_str(),
        Some("DoNotSchedule")
    );
    assert_eq!(
        by_key("topology.kubernetes.io/zone")["whenUnsatisfiable"].as_str(),
        Some("ScheduleAnyway")
    );
}

#[test]
fn the_lookup_service_resolves_to_every_ready_pod_on_the_lookup_port() {
    let (labels, ports) = pod_labels_and_ports();
    let cfg = Config::from_toml(&read("deploy/k8s/churnwatch.toml")).unwrap();
    let svc = yaml("deploy/k8s/lookup-service.yaml");
    assert_eq!(svc["kind"].as_str(), Some("Service"));
    // Headless: DNS answers every pod's address, for the backend's fan-out.
    assert_eq!(svc["spec"]["clusterIP"].as_str(), Some("None"));
    assert_ne!(
        svc["spec"]["publishNotReadyAddresses"].as_bool(),
        Some(true)
    );
    assert!(selects(&svc["spec"]["selector"], &labels));
    let [p] = &svc["spec"]["ports"].as_vec().expect("ports")[..] else {
        panic!("one port")
    };
    let target = p["targetPort"].as_str().expect("a named target port");
    let container = ports
        .iter()
        .find(|(n, _)| n == target)
        .expect("a container port of that name");
    assert_eq!(container.1, i64::from(port(&cfg.http.lookup_listen)));
    assert_eq!(p["port"].as_i64(), Some(container.1));
}

#[test]
fn the_network_policy_admits_prometheus_and_the_backend_by_namespace_and_pod() {
    let (labels, ports) = pod_labels_and_ports();
    let np = yaml("deploy/k8s/networkpolicy.yaml");
    assert!(selects(&np["spec"]["podSelector"]["matchLabels"], &labels));
    let rules = np["spec"]["ingress"].as_vec().expect("ingress");
    let mut admitted = BTreeSet::new();
    for rule in rules {
        let rule_ports = rule["ports"].as_vec().expect("each rule names its ports");
        let peers = rule["from"].as_vec().expect("each rule names its peers");
        assert!(!peers.is_empty());
        for peer in peers {
            // Namespace AND pod in one peer: the right pod in the right namespace only.
            assert!(
                peer["namespaceSelector"]["matchLabels"]
                    .as_hash()
                    .is_some_and(|h| !h.is_empty()),
                "a peer without a namespaceSelector"
            );
            assert!(
                peer["podSelector"]["matchLabels"]
                    .as_hash()
                    .is_some_and(|h| !h.is_empty()),
                "a peer without a podSelector"
            );
        }
        for p in rule_ports {
            let name = p["port"].as_str().expect("ports by name");
            assert!(
                ports.iter().any(|(n, _)| n == name),
                "no container port {name}"
            );
            admitted.insert(name.to_string());
            if name == "lookup" {
                assert!(peers.iter().all(|peer| {
                    peer["podSelector"]["matchLabels"]["churnwatch-lookup-client"].as_str()
                        == Some("true")
                }));
            }
        }
    }
    assert_eq!(
        admitted,
        BTreeSet::from(["lookup".to_string(), "metrics".to_string()])
    );
}
