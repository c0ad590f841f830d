//! The container runs what you think it runs (issue 22). The image's ENTRYPOINT once held
//! `churnwatch run --config X` and the pod's `args` `run --config X`: Kubernetes appended
//! one to the other, and every pod exited 2 on `run --config X run --config X`. A test that
//! read the text of `args` saw nothing wrong.
//!
//! Here the argv is computed as the runtime computes it, from deploy/Dockerfile (ENTRYPOINT
//! and CMD of the final stage, exec form only), then deploy/k8s/deployment.yaml (`command`
//! replaces ENTRYPOINT and drops CMD; `args` replaces CMD) or docker-compose.yml
//! (`entrypoint` replaces ENTRYPOINT and drops CMD; `command` replaces CMD). The built binary
//! then runs it with `run` swapped for `check-config` (which takes `--config` as `run` does),
//! with the container's literal environment, and every absolute path argument mapped to the
//! file that is there in the container: a volume mount (a ConfigMap from the kustomization's
//! configMapGenerator, or a compose bind mount) first, else a file the Dockerfile COPYs.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::process::Command;

#[path = "common/image.rs"]
mod image;

use image::{image, image_file, parse_dockerfile, read, Image, ROOT};
use yaml_rust2::{yaml::Hash, Yaml, YamlLoader};

fn strings(node: &Yaml) -> Option<Vec<String>> {
    match node {
        Yaml::BadValue | Yaml::Null => None,
        Yaml::Array(items) => Some(items.iter().map(|i| scalar(i).expect("a string")).collect()),
        Yaml::String(s) if !s.contains(['"', '\'']) => {
            Some(s.split_whitespace().map(str::to_string).collect())
        }
        other => panic!("{other:?}: give it as a list"),
    }
}

fn scalar(node: &Yaml) -> Option<String> {
    match node {
        Yaml::String(s) | Yaml::Real(s) => Some(s.clone()),
        Yaml::Integer(i) => Some(i.to_string()),
        Yaml::Boolean(b) => Some(b.to_string()),
        _ => None,
    }
}

/// YAML merge keys (`<<: *anchor`), which the parser leaves as plain keys: the anchored
/// mapping's entries, under those the mapping sets itself, all the way down.
fn merged(node: &Yaml) -> Yaml {
    match node {
        Yaml::Hash(h) => {
            let mut out = Hash::new();
            for (k, v) in h {
                if k.as_str() != Some("<<") {
                    out.insert(k.clone(), merged(v));
                }
            }
            if let Some(base) = h.get(&Yaml::String("<<".into())) {
                let bases = match base {
                    Yaml::Array(list) => list.clone(),
                    one => vec![one.clone()],
                };
                for base in bases {
                    for (k, v) in merged(&base).as_hash().expect("a merged mapping") {
                        out.entry(k.clone()).or_insert_with(|| v.clone());
                    }
                }
            }
            Yaml::Hash(out)
        }
        Yaml::Array(items) => Yaml::Array(items.iter().map(merged).collect()),
        other => other.clone(),
    }
}

fn yaml(path: &str) -> Vec<Yaml> {
    YamlLoader::load_from_str(&read(path))
        .unwrap_or_else(|e| panic!("{path}: {e}"))
        .iter()
        .map(merged)
        .collect()
}

/// What a container runs: its argv, its literal environment, and where its files come from.
#[derive(Debug)]
struct Container {
    what: String,
    argv: Vec<String>,
    env: Vec<(String, String)>,
    /// (path in the container, file or directory on this side; `None`: a directory mount
    /// that hides the image's files and has nothing else).
    mounts: Vec<(String, Option<PathBuf>)>,
}

/// The runtimes' one rule: Kubernetes' `command` (compose's `entrypoint`) replaces
/// ENTRYPOINT and drops CMD; its `args` (compose's `command`) replaces CMD.
fn container_argv(
    image: &Image,
    command: Option<Vec<String>>,
    args: Option<Vec<String>>,
) -> Vec<String> {
    let cmd = match (&command, args) {
        (_, Some(args)) => args,
        (Some(_), None) => Vec::new(),
        (None, None) => image.cmd.clone(),
    };
    let mut argv = command.unwrap_or_else(|| image.entrypoint.clone());
    argv.extend(cmd);
    argv
}

/// The churnwatch container of the Deployment, with the ConfigMaps its volumes mount
/// resolved through the kustomization's configMapGenerator.
fn pod(image: &Image) -> Container {
    let docs = yaml("deploy/k8s/deployment.yaml");
    let deployment = docs
        .iter()
        .find(|d| d["kind"].as_str() == Some("Deployment"))
        .expect("a Deployment");
    let spec = &deployment["spec"]["template"]["spec"];
    let container = spec["containers"]
        .as_vec()
        .expect("containers")
        .iter()
        .find(|c| {
            c["image"]
                .as_str()
                .is_some_and(|i| i.starts_with("churnwatch"))
        })
        .expect("a container of the churnwatch image");
    let argv = container_argv(
        image,
        strings(&container["command"]),
        strings(&container["args"]),
    );
    let env = container["env"]
        .as_vec()
        .into_iter()
        .flatten()
        .filter_map(|e| Some((e["name"].as_str()?.to_string(), scalar(&e["value"])?)))
        .collect();
    let generated = configmap_files();
    let volumes = spec["volumes"].as_vec().expect("volumes");
    let mut mounts = Vec::new();
    for m in container["volumeMounts"].as_vec().into_iter().flatten() {
        let name = m["name"].as_str().expect("a mount's name");
        let path = m["mountPath"].as_str().expect("a mount's path").to_string();
        let volume = volumes
            .iter()
            .find(|v| v["name"].as_str() == Some(name))
            .unwrap_or_else(|| panic!("mount {name}: no such volume"));
        let Some(map) = volume["configMap"]["name"].as_str() else {
            continue;
        };
        let files = generated.get(map).unwrap_or_else(|| {
            panic!("ConfigMap {map}: not generated by deploy/k8s/kustomization.yaml")
        });
        assert!(
            volume["configMap"]["items"].is_badvalue(),
            "items: not modelled here"
        );
        match m["subPath"].as_str() {
            Some(key) => mounts.push((path, Some(files[key].clone()))),
            None => {
                let keys = files
                    .iter()
                    .map(|(key, file)| (format!("{path}/{key}"), Some(file.clone())));
                mounts.extend(keys);
                mounts.push((path, None));
            }
        }
    }
    Container {
        what: "the Kubernetes pod".into(),
        argv,
        env,
        mounts,
    }
}

/// configMapGenerator: ConfigMap name -> key -> file (`files: [path]` or `[key=path]`).
fn configmap_files() -> BTreeMap<String, BTreeMap<String, PathBuf>> {
    let docs = yaml("deploy/k8s/kustomization.yaml");
    let generators = docs[0]["configMapGenerator"]
        .as_vec()
        .expect("configMapGenerator");
    generators
        .iter()
        .map(|g| {
            let files = strings(&g["files"])
                .expect("files")
                .into_iter()
                .map(|f| {
                    let (key, path) = match f.split_once('=') {
                        Some((k, p)) => (k.to_string(), p.to_string()),
                        None => (
                            Path::new(&f)
                                .file_name()
                                .unwrap()
                                .to_str()
                                .unwrap()
                                .to_string(),
                            f,
                        ),
                    };
                    (key, Path::new(ROOT).join("deploy/k8s").join(path))
                })
                .collect();
            (g["name"].as_str().expect("a name").to_string(), files)
        })
        .collect()
}

/// Every compose service built from deploy/Dockerfile.
fn compose_services(image: &Image) -> Vec<Container> {
    let docs = yaml("docker-compose.yml");
    let services = docs[0]["services"].as_hash().expect("services");
    let ours: Vec<Container> = services
        .iter()
        .filter(|(_, s)| s["build"]["dockerfile"].as_str() == Some("deploy/Dockerfile"))
        .map(|(name, s)| {
            let env = match &s["environment"] {
                Yaml::Hash(h) => h
                    .iter()
                    .filter_map(|(k, v)| Some((k.as_str()?.to_string(), scalar(v)?)))
                    .collect(),
                Yaml::Array(list) => list
                    .iter()
                    .filter_map(|e| e.as_str()?.split_once('='))
                    .map(|(k, v)| (k.to_string(), v.to_string()))
                    .collect(),
                _ => Vec::new(),
            };
            let mounts = s["volumes"]
                .as_vec()
                .into_iter()
                .flatten()
                .filter_map(|v| {
                    let mut parts = v.as_str()?.split(':');
                    let (host, path) = (parts.next()?, parts.next()?);
                    Some((path.to_string(), Some(Path::new(ROOT).join(host))))
                })
                .collect();
            Container {
                what: format!("compose service {}", name.as_str().unwrap()),
                argv: container_argv(image, strings(&s["entrypoint"]), strings(&s["command"])),
                env,
                mounts,
            }
        })
        .collect();
    assert!(
        !ours.is_empty(),
        "docker-compose.yml: no service built from deploy/Dockerfile"
    );
    ours
}

/// The file on this side that the container sees at `path`.
fn host_file(container: &Container, image: &Image, path: &str) -> PathBuf {
    let mut mounts = container.mounts.clone();
    mounts.sort_by_key(|(p, _)| std::cmp::Reverse(p.len()));
    let mounted = mounts.iter().find_map(|(at, host)| {
        let rest = path.strip_prefix(at.as_str())?;
        let inside = rest.is_empty() || rest.starts_with('/');
        inside.then(|| {
            let host = host.as_ref().unwrap_or_else(|| {
                panic!("{}: {path} is hidden by the volume at {at}", container.what)
            });
            match rest.trim_start_matches('/') {
                "" => host.clone(),
                rest => host.join(rest),
            }
        })
    });
    let file = mounted
        .or_else(|| image_file(image, path))
        .unwrap_or_else(|| panic!("{}: nothing at {path} (no mount, no COPY)", container.what));
    assert!(
        file.is_file(),
        "{}: {path} is {} on this side, not a file",
        container.what,
        file.display()
    );
    file
}

/// Runs the container's argv as `check-config`; `Err` holds what went wrong.
fn check(container: &Container, image: &Image) -> Result<(), String> {
    let (program, args) = container.argv.split_first().ok_or("an empty argv")?;
    if program != "churnwatch" {
        return Err(format!(
            "argv[0] is `{program}`, not `churnwatch`: {:?}",
            container.argv
        ));
    }
    if !image
        .copies
        .iter()
        .any(|(dest, _)| dest == "/usr/local/bin/churnwatch")
    {
        return Err("the image puts no churnwatch on the PATH".into());
    }
    let run = args
        .iter()
        .position(|a| a == "run")
        .ok_or(format!("no `run` in {:?}", container.argv))?;
    // check-config also takes a bare path, which `run` refuses.
    if !args
        .iter()
        .any(|a| a == "--config" || a.starts_with("--config="))
    {
        return Err(format!("no --config in {:?}", container.argv));
    }
    let mut mapped: Vec<String> = args.to_vec();
    mapped[run] = "check-config".into();
    for arg in &mut mapped {
        let (prefix, value) = match arg.split_once('=') {
            Some((flag, v)) if flag.starts_with("--") => (format!("{flag}="), v.to_string()),
            _ => (String::new(), arg.clone()),
        };
        if value.starts_with('/') {
            *arg = format!("{prefix}{}", host_file(container, image, &value).display());
        }
    }
    let dir = tempfile::tempdir().unwrap();
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_churnwatch"));
    for (k, _) in std::env::vars() {
        if k.starts_with("CHURNWATCH") || k == "RUST_LOG" {
            cmd.env_remove(k);
        }
    }
    let out = cmd
        .args(&mapped)
        .envs(container.env.iter().map(|(k, v)| (k, v)))
        .current_dir(dir.path())
        .output()
        .unwrap();
    let (stdout, stderr) = (
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr),
    );
    if out.status.success() && stdout.trim() == "ok" {
        Ok(())
    } else {
        Err(format!(
            "{}: {:?} checked as churnwatch {mapped:?}: {}\nstdout: {stdout}\nstderr: {stderr}",
            container.what, container.argv, out.status
        ))
    }
}

#[test]
fn the_image_alone_runs_the_service_on_the_config_it_copies() {
    let image = image();
    assert_eq!(
        image.entrypoint,
        ["churnwatch"],
        "the subcommand belongs in CMD"
    );
    let alone = Container {
        what: "the image alone".into(),
        argv: container_argv(&image, None, None),
        env: Vec::new(),
        mounts: Vec::new(),
    };
    assert_eq!(
        host_file(&alone, &image, "/etc/churnwatch/churnwatch.toml"),
        Path::new(ROOT).join("config/churnwatch.example.toml")
    );
    check(&alone, &image).unwrap();
}

#[test]
fn the_kubernetes_pod_runs_the_service_on_its_configmap() {
    let image = image();
    let pod = pod(&image);
    assert_eq!(pod.argv[1], "run", "{:?}", pod.argv);
    let config = pod
        .argv
        .iter()
        .find(|a| a.starts_with('/'))
        .expect("a config path");
    assert_eq!(
        host_file(&pod, &image, config),
        Path::new(ROOT).join("deploy/k8s/churnwatch.toml"),
        "the ConfigMap's file hides the image's"
    );
    check(&pod, &image).unwrap();
}

#[test]
fn the_compose_services_run_the_service() {
    let image = image();
    for service in compose_services(&image) {
        assert_eq!(service.argv[1], "run", "{:?}", service.argv);
        check(&service, &image).unwrap();
    }
}

#[test]
fn the_crash_looping_pair_of_entrypoint_and_args_fails_the_check() {
    let old = r#"ENTRYPOINT ["churnwatch", "run", "--config", "/etc/churnwatch/churnwatch.toml"]"#;
    let image = parse_dockerfile(&format!("{}\n{old}\n", read("deploy/Dockerfile"))).unwrap();
    let pod = pod(&image);
    assert_eq!(
        pod.argv.iter().filter(|a| *a == "run").count(),
        2,
        "{:?}",
        pod.argv
    );
    let err = check(&pod, &image).unwrap_err();
    assert!(err.contains("exit status: 2"), "{err}");
}

#[test]
fn the_runtimes_rules_for_entrypoint_cmd_command_and_args() {
    let image = parse_dockerfile("FROM x\nENTRYPOINT [\"e\"]\nCMD [\"c\", \"1\"]\n").unwrap();
    let v = |s: &[&str]| Some(s.iter().map(|s| s.to_string()).collect::<Vec<_>>());
    assert_eq!(container_argv(&image, None, None), ["e", "c", "1"]);
    assert_eq!(container_argv(&image, None, v(&["a"])), ["e", "a"]);
    assert_eq!(container_argv(&image, v(&["k"]), None), ["k"]);
    assert_eq!(container_argv(&image, v(&["k"]), v(&["a"])), ["k", "a"]);
    assert_eq!(container_argv(&image, v(&["k"]), None), ["k"]);
    assert_eq!(
        container_argv(&image, None, strings(&Yaml::String("a b".into()))),
        ["e", "a", "b"]
    );
    let reset =
        parse_dockerfile("FROM x\nCMD [\"c\"]\nFROM y\nCMD [\"c\"]\nENTRYPOINT [\"e\"]\n").unwrap();
    assert_eq!(reset.cmd, ["c"], "a CMD of the stage itself stays");
    let inherited = parse_dockerfile("FROM x\nCMD [\"c\"]\nFROM y\nENTRYPOINT [\"e\"]\n").unwrap();
    assert!(inherited.cmd.is_empty(), "the last stage only");
    let err = parse_dockerfile("FROM x\nENTRYPOINT churnwatch run\n").unwrap_err();
    assert!(err.contains("shell form"), "{err}");
    assert!(parse_dockerfile("FROM x\nRUN true\n").is_err());
    let doc = &YamlLoader::load_from_str("a: &a {x: 1, y: 2}\nb: {<<: *a, y: 3}\n").unwrap()[0];
    let b = &merged(doc)["b"];
    assert_eq!((b["x"].as_i64(), b["y"].as_i64()), (Some(1), Some(3)));
}

/// .dockerignore: one plain path a line, none of them a path the image build reads (the
/// manifest and lock file, the build script, the targets Cargo.toml names or finds, the
/// sources build.rs compiles, the files the Dockerfile COPYs from the context).
#[test]
fn the_docker_context_keeps_what_the_build_needs() {
    let ignored: Vec<String> = read(".dockerignore")
        .lines()
        .map(str::trim)
        .filter(|l| !l.is_empty() && !l.starts_with('#'))
        .map(|l| {
            assert!(
                !l.contains(['*', '?', '[', '!']),
                ".dockerignore: `{l}` is not a plain path"
            );
            l.trim_matches('/').to_string()
        })
        .collect();
    for must in ["target", ".git"] {
        assert!(
            ignored.iter().any(|i| i == must),
            ".dockerignore: {must} is sent to the builder"
        );
    }
    let manifest: toml::Table = toml::from_str(&read("Cargo.toml")).unwrap();
    let mut needed: Vec<String> = [
        "Cargo.toml",
        "Cargo.lock",
        "build.rs",
        "src",
        "proto",
        "csrc",
        // STATIC_LIB_libcurl: without it the image's librdkafka has no OIDC.
        ".cargo/config.toml",
    ]
    .map(String::from)
    .to_vec();
    for (kind, dir) in [("lib", "src"), ("bin", "src/bin"), ("bench", "benches")] {
        let targets = match manifest.get(kind) {
            Some(toml::Value::Array(list)) => list.clone(),
            Some(one) => vec![one.clone()],
            None => Vec::new(),
        };
        for t in targets {
            let path = t.get("path").and_then(|p| p.as_str()).map(String::from);
            let name = t.get("name").and_then(|n| n.as_str());
            needed.push(path.unwrap_or_else(|| format!("{dir}/{}.rs", name.unwrap())));
        }
    }
    needed.extend(
        image()
            .copies
            .into_iter()
            .filter_map(|(_, src)| src)
            .filter(|s| s != "."),
    );
    for path in &needed {
        assert!(
            Path::new(ROOT).join(path).exists(),
            "{path}: needed and missing"
        );
        let hit = ignored
            .iter()
            .find(|i| *path == **i || path.starts_with(&format!("{i}/")));
        assert!(
            hit.is_none(),
            ".dockerignore leaves out {path}, which the build reads"
        );
    }
}
