//! The deployment files agree with the service (issue 13): every metric a Grafana panel or an
//! alert rule names is one the service registers, and the ports, topics and config keys of
//! docker-compose.yml, deploy/prometheus.yml and deploy/k8s are the service's.
//!
//! The YAML files are read line by line (the crate has no YAML parser, and these files are
//! ours, in a fixed layout); each helper fails loudly when it finds nothing, so a layout
//! change breaks the test instead of emptying it. Their syntax is checked by
//! `.ci/deploy-check` (promtool, kubernetes-validate, check-jsonschema).

use churnwatch::config::Config;
use churnwatch::metrics::Metrics;
use std::collections::BTreeSet;

fn read(path: &str) -> String {
    let full = format!("{}/{path}", env!("CARGO_MANIFEST_DIR"));
    std::fs::read_to_string(&full).unwrap_or_else(|e| panic!("{full}: {e}"))
}

/// Whether the service's registry has a family `name`. Labelled vectors appear in
/// `gather()` only once a label is used, and the registry lists no descriptors, so the name
/// is probed: registering another collector under a registered name is refused (same
/// descriptor id, or the same name with other labels or help), an unknown one is accepted.
fn registered(name: &str) -> bool {
    let metrics = Metrics::new();
    let probe = prometheus::IntGauge::new(name, "deploy_files probe").expect("a valid name");
    metrics.registry.register(Box::new(probe)).is_err()
}

/// A name as PromQL may use it: a family, or a histogram family's series (`_bucket`, `_sum`,
/// `_count`; never of a counter, whose names end in `_total`).
fn exported(name: &str) -> bool {
    registered(name)
        || ["_bucket", "_sum", "_count"].iter().any(|suffix| {
            name.strip_suffix(suffix)
                .is_some_and(|base| !base.ends_with("_total") && registered(base))
        })
}

/// Every `churnwatch_...` identifier in `text`.
fn metric_names(text: &str) -> BTreeSet<String> {
    let ident = |c: char| c.is_ascii_alphanumeric() || c == '_' || c == ':';
    let mut names = BTreeSet::new();
    let mut rest = text;
    while let Some(i) = rest.find("churnwatch_") {
        let before = rest[..i].chars().next_back();
        let len = rest[i..]
            .find(|c: char| !ident(c))
            .unwrap_or(rest.len() - i);
        if !before.is_some_and(ident) {
            names.insert(rest[i..i + len].to_string());
        }
        rest = &rest[i + len..];
    }
    names
}

fn dashboard_expressions() -> Vec<String> {
    let dash: serde_json::Value =
        serde_json::from_str(&read("deploy/grafana/dashboards/churnwatch.json")).unwrap();
    let exprs: Vec<String> = dash["panels"]
        .as_array()
        .expect("panels")
        .iter()
        .filter_map(|p| p["targets"].as_array())
        .flatten()
        .map(|t| {
            t["expr"]
                .as_str()
                .expect("every target has an expr")
                .to_string()
        })
        .collect();
    assert!(exprs.len() >= 20, "only {} panel expressions", exprs.len());
    exprs
}

#[test]
fn the_registry_probe_sees_labelled_families_gather_misses_and_refuses_unknown_names() {
    let gathered: BTreeSet<String> = Metrics::new()
        .registry
        .gather()
        .iter()
        .map(|f| f.name().to_string())
        .collect();
    assert!(!gathered.contains("churnwatch_dead_lettered_total"));
    assert!(registered("churnwatch_dead_lettered_total"));
    assert!(
        registered("churnwatch_build_info"),
        "a family with a const label"
    );
    assert!(exported("churnwatch_processing_latency_seconds_bucket"));
    assert!(!exported("churnwatch_no_such_metric"));
    assert!(
        !exported("churnwatch_tickets_total_sum"),
        "a counter has no _sum"
    );
    assert_eq!(
        metric_names("rate(churnwatch_a_total{x=\"y\"}[5m]) / xchurnwatch_b + churnwatch_c_bucket"),
        BTreeSet::from(["churnwatch_a_total".into(), "churnwatch_c_bucket".into()])
    );
}

#[test]
fn every_metric_in_the_dashboard_and_the_alert_rules_is_registered() {
    let mut names = BTreeSet::new();
    for expr in dashboard_expressions() {
        names.extend(metric_names(&expr));
    }
    // The whole rules file: expressions, and the metrics the runbooks tell people to read.
    let alerts = read("deploy/prometheus/alerts.yml");
    let in_alerts = metric_names(&alerts);
    assert!(in_alerts.len() >= 7, "{in_alerts:?}");
    names.extend(in_alerts);
    let unknown: Vec<&String> = names.iter().filter(|n| !exported(n)).collect();
    assert!(
        unknown.is_empty(),
        "named in deploy/ but not registered by the service: {unknown:?}"
    );
}

/// The lines of the block that starts at the line `header` (its own indentation included),
/// up to the next line indented as little; comments and blank lines never end it.
fn block<'a>(text: &'a str, header: &str) -> Vec<&'a str> {
    let mut lines = text.lines().skip_while(|l| *l != header);
    assert!(lines.next().is_some(), "no line `{header}`");
    let indent = header.len() - header.trim_start().len();
    lines
        .take_while(|l| {
            let t = l.trim_start();
            t.is_empty() || t.starts_with('#') || l.len() - t.len() > indent
        })
        .collect()
}

/// Drops a leading comment marker, so commented-out settings are checked too.
fn uncommented(line: &str) -> &str {
    let t = line.trim_start();
    t.strip_prefix('#').map_or(t, str::trim_start)
}

/// `KEY: value` (compose) or `- name: KEY` (Kubernetes) settings of churnwatch's environment.
fn env_keys(lines: &[&str]) -> Vec<(String, String)> {
    lines
        .iter()
        .map(|l| uncommented(l).trim_start_matches("- name: "))
        .filter(|l| l.starts_with("CHURNWATCH__"))
        .map(|l| match l.split_once(": ") {
            Some((k, v)) => (k.to_string(), v.trim().to_string()),
            None => (l.trim().to_string(), "from-a-secret".to_string()),
        })
        .collect()
}

/// Every quoted `[ip:]host:container` port mapping outside comments.
fn port_mappings(text: &str) -> Vec<&str> {
    let found: Vec<&str> = text
        .lines()
        .filter(|l| !l.trim_start().starts_with('#'))
        .flat_map(|l| l.split('"').skip(1).step_by(2))
        .filter(|q| {
            let parts: Vec<&str> = q.split(':').collect();
            parts.len() >= 2
                && parts
                    .iter()
                    .all(|p| !p.is_empty() && p.chars().all(|c| c.is_ascii_digit() || c == '.'))
        })
        .collect();
    assert!(!found.is_empty(), "no port mappings found");
    found
}

fn port(addr: &str) -> u16 {
    addr.rsplit_once(':')
        .and_then(|(_, p)| p.parse().ok())
        .unwrap_or_else(|| panic!("`{addr}` has no port"))
}

/// Every environment key names a config key that exists and takes its value.
fn assert_env_keys_exist(file: &str, keys: &[(String, String)]) {
    assert!(!keys.is_empty(), "{file}: no CHURNWATCH__ settings found");
    for (k, v) in keys {
        if let Err(e) = Config::load_with_env(None, [(k.clone(), v.clone())]) {
            panic!("{file}: {k}={v}: {e}");
        }
    }
}

#[test]
fn an_environment_key_the_config_lacks_is_refused() {
    let bad = [("CHURNWATCH__KAFKA__TOPIC__CDR".to_string(), "x".to_string())];
    assert!(Config::load_with_env(None, bad).is_err());
}

#[test]
fn compose_ports_topics_and_keys_are_the_services() {
    let compose = read("docker-compose.yml");
    let shared = block(&compose, "x-churnwatch: &churnwatch");
    let mut env = env_keys(&shared);
    let instances = ["  churnwatch-1:", "  churnwatch-2:"];
    for header in instances {
        let b = block(&compose, header);
        assert!(b.iter().any(|l| l.trim() == "<<: *churnwatch"), "{header}");
        let own = env_keys(&b);
        // One consumer group: no instance sets a group of its own.
        assert!(
            !own.iter().any(|(k, _)| k.ends_with("GROUP_ID")),
            "{header}"
        );
        env.extend(own);
    }
    assert_env_keys_exist("docker-compose.yml", &env);
    let cfg = Config::load_with_env(
        None,
        env.iter().filter(|(k, _)| !k.contains("LOOKUP")).cloned(),
    )
    .unwrap();
    assert!(env.iter().any(|(k, _)| k == "CHURNWATCH__KAFKA__GROUP_ID"));
    let metrics_port = port(&cfg.http.listen);

    // Published ports: localhost only, each instance's metrics port on a host port of its own.
    let mut host_ports = BTreeSet::new();
    for header in instances {
        let mappings: Vec<&str> = block(&compose, header)
            .into_iter()
            .filter(|l| !l.trim_start().starts_with('#'))
            .filter_map(|l| l.trim().strip_prefix("- \"127.0.0.1:"))
            .collect();
        let [mapping] = mappings[..] else {
            panic!("{header}: expected one published port, found {mappings:?}")
        };
        let (host, container) = mapping.trim_end_matches('"').split_once(':').unwrap();
        assert_eq!(container.parse::<u16>().unwrap(), metrics_port, "{header}");
        assert!(
            host_ports.insert(host.to_string()),
            "{header}: host port {host} taken"
        );
    }
    for mapping in port_mappings(&compose) {
        assert!(
            mapping.starts_with("127.0.0.1:"),
            "published beyond localhost: {mapping}"
        );
    }

    // Prometheus scrapes both instances on that port, and loads the rules from the mount.
    let prometheus = read("deploy/prometheus.yml");
    let targets = prometheus
        .lines()
        .find_map(|l| l.trim().strip_prefix("- targets: "))
        .expect("targets");
    for (instance, header) in ["churnwatch-1", "churnwatch-2"].iter().zip(instances) {
        assert!(header.contains(instance));
        assert!(
            targets.contains(&format!("\"{instance}:{metrics_port}\"")),
            "{targets}"
        );
    }
    assert!(prometheus.contains("/etc/prometheus/rules/alerts.yml"));
    assert!(compose.contains("./deploy/prometheus:/etc/prometheus/rules:ro"));
    let provisioning = read("deploy/grafana/provisioning/dashboards/churnwatch.yml");
    assert!(provisioning.contains("path: /var/lib/grafana/dashboards"));
    assert!(compose.contains("./deploy/grafana/dashboards:/var/lib/grafana/dashboards:ro"));

    // Topics: exactly the configured ones, inputs and changelog co-partitioned, the changelog
    // compacted.
    let script = block(&compose, "  topics:");
    let mut created = BTreeSet::new();
    let mut partitions = BTreeSet::new();
    for l in &script {
        let words: Vec<&str> = l.split_whitespace().collect();
        if words.first() == Some(&"for") && words.get(2) == Some(&"in") {
            for w in &words[3..] {
                created.insert(w.trim_end_matches(';').to_string());
                if w.ends_with(';') {
                    break;
                }
            }
        }
        for pair in words.windows(2) {
            if pair[0] == "--topic" && !pair[1].starts_with('$') {
                created.insert(pair[1].to_string());
            }
        }
    }
    let t = &cfg.kafka.topics;
    let configured: BTreeSet<String> = [
        &t.cdr,
        &t.account,
        &t.outcomes,
        &t.tickets,
        &t.dead_letter,
        &t.changelog,
    ]
    .into_iter()
    .cloned()
    .collect();
    assert_eq!(created, configured);
    for l in &script {
        let words: Vec<&str> = l.split_whitespace().collect();
        let co_partitioned =
            l.contains("--topic $$t ") || l.contains(&format!("--topic {} ", t.changelog));
        if let Some(i) = words
            .iter()
            .position(|w| *w == "--partitions")
            .filter(|_| co_partitioned)
        {
            partitions.insert(words[i + 1].to_string());
        }
    }
    assert_eq!(partitions.len(), 1, "inputs and changelog: {partitions:?}");
    let changelog = script
        .iter()
        .find(|l| l.contains(&format!("--topic {}", t.changelog)));
    assert!(changelog
        .expect("changelog created")
        .contains("cleanup.policy=compact"));
}

/// The value after `key` on the first line of `lines` holding it.
fn value_after<'a>(lines: &[&'a str], key: &str) -> &'a str {
    lines
        .iter()
        .find_map(|l| l.split_once(key).map(|(_, v)| v))
        .unwrap_or_else(|| panic!("no `{key}`"))
        .trim()
        .trim_end_matches(['}', ',', ']'])
        .split([',', '}'])
        .next()
        .unwrap()
        .trim()
}

#[test]
fn kubernetes_ports_paths_and_keys_are_the_services() {
    let toml = read("deploy/k8s/churnwatch.toml");
    let cfg = Config::from_toml(&toml).expect("deploy/k8s/churnwatch.toml is valid");
    let example = Config::from_toml(&read("config/churnwatch.example.toml")).unwrap();
    // Generated from the example: the detection sections are the example's, the topics the
    // defaults that docker-compose.yml creates. As text too, so a key added to the example
    // (whose default the parsed value would hide) is not missing from the ConfigMap.
    assert_eq!(cfg.detect, example.detect);
    let detection = |text: &str| {
        let from = text.find("\n[engine]").expect("an [engine] section");
        let to = text.find("\n[kafka]").expect("a [kafka] section");
        text[from..to].to_string()
    };
    assert_eq!(
        detection(&toml),
        detection(&read("config/churnwatch.example.toml")),
        "deploy/k8s/churnwatch.toml: copy the example's [engine] to [kafka] text"
    );
    assert_eq!(cfg.kafka.topics, example.kafka.topics);

    let deployment = read("deploy/k8s/deployment.yaml");
    let lines: Vec<&str> = deployment.lines().collect();
    assert_env_keys_exist("deploy/k8s/deployment.yaml", &env_keys(&lines));
    let container_port = |name: &str| -> u16 {
        let line = lines
            .iter()
            .find(|l| l.contains(&format!("{{name: {name}, containerPort:")))
            .unwrap_or_else(|| panic!("no container port {name}"));
        value_after(&[line], "containerPort:").parse().unwrap()
    };
    assert_eq!(container_port("metrics"), port(&cfg.http.listen));
    assert_eq!(container_port("lookup"), port(&cfg.http.lookup_listen));
    for (probe, path) in [
        ("readinessProbe:", "/readyz"),
        ("livenessProbe:", "/healthz"),
    ] {
        let after: Vec<&str> = lines
            .iter()
            .skip_while(|l| l.trim() != probe)
            .copied()
            .collect();
        assert_eq!(value_after(&after, "httpGet: {path:"), path);
        assert_eq!(value_after(&after, "port:"), "metrics");
    }

    // The config file is the ConfigMap's, mounted where --config points.
    let args = lines.iter().find(|l| l.trim_start().starts_with("args:"));
    let config_path = args
        .and_then(|a| a.split('"').nth(5))
        .expect("args: [run --config PATH]");
    let mount = |name: &str| -> String {
        let line = lines
            .iter()
            .find(|l| l.contains(&format!("{{name: {name}, mountPath:")))
            .unwrap_or_else(|| panic!("no mount {name}"));
        value_after(&[line], "mountPath:").to_string()
    };
    let (dir, file) = config_path.rsplit_once('/').unwrap();
    assert_eq!(mount("config"), dir);
    let kustomization = read("deploy/k8s/kustomization.yaml");
    let k: Vec<&str> = kustomization.lines().collect();
    assert_eq!(value_after(&k, "files: ["), file);
    assert_eq!(
        value_after(&k, "- name: "),
        value_after(&lines, "configMap: {name:")
    );
    // The look-up token is a file of the Secret's volume.
    let (token_dir, token_file) = cfg.http.lookup_token_file.rsplit_once('/').unwrap();
    assert_eq!(mount("secrets"), token_dir);
    assert_eq!(
        value_after(&lines, "items: [{key: lookup-token, path:"),
        token_file
    );
    assert!(
        !toml.contains("sasl.password\" ="),
        "the password comes from the Secret"
    );

    // The Service exposes the metrics port under the name the ServiceMonitor scrapes.
    let service = read("deploy/k8s/service.yaml");
    let s: Vec<&str> = service.lines().collect();
    assert_eq!(
        value_after(&s, "port:").parse::<u16>().unwrap(),
        port(&cfg.http.listen)
    );
    assert_eq!(value_after(&s, "{name:"), "metrics");
    let monitor = read("deploy/k8s/servicemonitor.yaml");
    let m: Vec<&str> = monitor.lines().collect();
    assert_eq!(value_after(&m, "- port:"), "metrics");
    assert_eq!(value_after(&m, "path:"), "/metrics");

    // kustomization.yaml lists every manifest beside it.
    let listed: BTreeSet<String> = block(&kustomization, "resources:")
        .iter()
        .filter_map(|l| l.trim().strip_prefix("- "))
        .map(str::to_string)
        .collect();
    let dir = format!("{}/deploy/k8s", env!("CARGO_MANIFEST_DIR"));
    let present: BTreeSet<String> = std::fs::read_dir(dir)
        .unwrap()
        .map(|e| e.unwrap().file_name().into_string().unwrap())
        .filter(|n| n.ends_with(".yaml") && n != "kustomization.yaml")
        .collect();
    assert_eq!(listed, present);
}

#[test]
fn every_alert_rule_has_a_severity_a_runbook_and_a_firing_and_a_silent_unit_test() {
    let rules = read("deploy/prometheus/alerts.yml");
    let tests = read("deploy/prometheus/alerts_test.yml");
    let names: Vec<&str> = rules
        .lines()
        .filter_map(|l| l.trim().strip_prefix("- alert: "))
        .collect();
    assert!(names.len() >= 7, "{names:?}");
    let runbook = runbook_sections();
    let headings: Vec<&str> = runbook.iter().map(|(h, _)| h.as_str()).collect();
    assert_eq!(
        headings, names,
        "docs/runbook.md: one `## ` section per alert, in the rules' order"
    );
    for name in &names {
        let rule = block(&rules, &format!("      - alert: {name}"));
        for key in ["severity: ", "summary: ", "description: "] {
            assert!(
                rule.iter().any(|l| l.trim().starts_with(key)),
                "{name}: no {key}"
            );
        }
        let rule_text = rule.join("\n");
        assert!(rule_text.contains("Runbook:"), "{name}: no runbook");
        // Its runbook_url is its own section of docs/runbook.md (GitHub's anchor of a heading
        // that is one word is the word in lower case), which says what it means, what to
        // check and what to do.
        let url = rule
            .iter()
            .find_map(|l| l.trim().strip_prefix("runbook_url: "))
            .unwrap_or_else(|| panic!("{name}: no runbook_url"));
        assert_eq!(url, format!("docs/runbook.md#{}", name.to_lowercase()));
        for part in ["**Means:**", "**Check:**", "**Do:**"] {
            assert!(
                runbook
                    .iter()
                    .any(|(h, body)| h == name && body.contains(part)),
                "docs/runbook.md, {name}: no {part}"
            );
        }
        // What comes after each `alertname: NAME` in the tests: `exp_alerts: []` (silent) or
        // `exp_alerts:` followed by alerts (firing).
        let cases: Vec<&str> = tests
            .lines()
            .zip(tests.lines().skip(1))
            .filter(|(l, _)| l.trim() == format!("alertname: {name}"))
            .map(|(_, next)| next.trim())
            .collect();
        assert!(cases.contains(&"exp_alerts: []"), "{name}: no silent case");
        assert!(cases.contains(&"exp_alerts:"), "{name}: no firing case");
    }
}

/// The `## ` sections of docs/runbook.md in order: (heading, text under it).
fn runbook_sections() -> Vec<(String, String)> {
    let mut sections: Vec<(String, String)> = Vec::new();
    for line in read("docs/runbook.md").lines() {
        if let Some(h) = line.strip_prefix("## ") {
            sections.push((h.trim().to_string(), String::new()));
        } else if let Some((_, body)) = sections.last_mut() {
            body.push_str(line);
            body.push('\n');
        }
    }
    sections
}
