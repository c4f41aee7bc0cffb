// tests/k8s/lib/check.mjs - validates kvferry's rendered Kubernetes
// manifests without a cluster, for tests/k8s/validate.sh.
//
// Three layers, because no single one catches what goes wrong in practice:
//  1. schema: every object against the Kubernetes OpenAPI schema compiled
//     into the npm package kubernetes-models (types, enums, required
//     fields), PodMonitor against @kubernetes-models/prometheus-operator,
//     LeaderWorkerSet against the schema in lws-schema.mjs plus its pod
//     templates against the core PodTemplateSpec;
//  2. strict: unknown fields (a typo such as `restartpolicy` passes the
//     OpenAPI schema, which allows extra keys, and the API server then
//     drops it silently), found by walking the objects along the field
//     lists of the package's type declarations;
//  3. rules the API server enforces beyond OpenAPI (a container without
//     image, probes on a plain init container...) and what kvferry needs
//     (shared process namespace, the socket emptyDir in both containers,
//     the sidecar as an init container with restartPolicy Always...).
//
// Usage:
//   node check.mjs validate NAME FILE [--mutate M]
//   node check.mjs roles FILE_A FILE_B ROLE_A ROLE_B
//   node check.mjs lws-sync DEPLOYMENT_FILE LWS_FILE
// Prints one line per check, "ok - ..." or "not ok - ..." followed by
// "#" lines saying why; exits 1 when a check failed, 2 on bad usage.

import fs from "node:fs";
import path from "node:path";
import { fileURLToPath } from "node:url";
import YAML from "yaml";
import { lwsValidate } from "./lws-schema.mjs";

const here = path.dirname(fileURLToPath(import.meta.url));
const nm = path.join(here, "node_modules");

// ---------------------------------------------------------------- output
let failed = 0;
function report(desc, errs) {
	if (errs.length === 0) {
		console.log(`ok - ${desc}`);
		return;
	}
	failed++;
	console.log(`not ok - ${desc}`);
	for (const e of errs.slice(0, 20))
		console.log(`#   ${e}`);
	if (errs.length > 20)
		console.log(`#   ... and ${errs.length - 20} more`);
}

function loadDocs(file) {
	const text = fs.readFileSync(file, "utf8");
	const docs = YAML.parseAllDocuments(text);
	const out = [];
	for (const d of docs) {
		if (d.errors.length)
			throw new Error(`${file}: YAML: ${d.errors[0].message}`);
		const o = d.toJS();
		if (o !== null && o !== undefined)
			out.push(o);
	}
	return out;
}

const id = (o) => `${o.kind}/${o.metadata?.name ?? "?"}`;

// ---------------------------------------------------------------- schema
const MODELS = {
	"v1/ConfigMap": "kubernetes-models/v1/ConfigMap.js",
	"v1/Secret": "kubernetes-models/v1/Secret.js",
	"v1/Service": "kubernetes-models/v1/Service.js",
	"apps/v1/Deployment": "kubernetes-models/apps/v1/Deployment.js",
	"apps/v1/StatefulSet": "kubernetes-models/apps/v1/StatefulSet.js",
	"resource.k8s.io/v1/ResourceClaimTemplate":
	    "kubernetes-models/resource.k8s.io/v1/ResourceClaimTemplate.js",
	"monitoring.coreos.com/v1/PodMonitor":
	    "@kubernetes-models/prometheus-operator/monitoring.coreos.com/v1/PodMonitor.js",
};
const POD_TEMPLATE = "kubernetes-models/v1/PodTemplateSpec.js";

async function modelClass(rel) {
	const mod = await import(path.join(nm, rel));
	const name = path.basename(rel, ".js");
	return mod[name];
}

function modelErrors(e, prefix) {
	// kubernetes-models throws a ValidationError carrying ajv's errors.
	const list = e.errors ?? e.details ?? null;
	if (Array.isArray(list) && list.length)
		return list.map((x) => `${prefix}${x.instancePath || "/"}: ` +
		    `${x.message}${x.params ? " " + JSON.stringify(x.params) : ""}`);
	return [`${prefix}: ${e.message}`];
}

async function schemaErrors(o) {
	const key = `${o.apiVersion}/${o.kind}`;
	if (key === "leaderworkerset.x-k8s.io/v1/LeaderWorkerSet") {
		const errs = lwsValidate(o).map((m) => `${id(o)}: ${m}`);
		const Tpl = await modelClass(POD_TEMPLATE);
		for (const t of ["leaderTemplate", "workerTemplate"]) {
			const tpl = o.spec?.leaderWorkerTemplate?.[t];
			if (tpl === undefined)
				continue;
			try {
				new Tpl(tpl).validate();
			} catch (e) {
				errs.push(...modelErrors(e, `${id(o)} ${t}`));
			}
		}
		return errs;
	}
	const rel = MODELS[key];
	if (!rel)
		return [`${id(o)}: no schema for ${key}: add one to check.mjs`];
	const Cls = await modelClass(rel);
	try {
		new Cls(o).validate();
	} catch (e) {
		return modelErrors(e, id(o));
	}
	return [];
}

// ---------------------------------------------------------------- strict
// The package's .d.ts files declare one interface per type, a property a
// line ("name"?: Type;), and import the types they refer to. That is
// enough to know every allowed field name along any path.
const ifaceCache = new Map();

function resolveSpec(spec, fromFile) {
	const base = spec.replace(/\.js$/, "");
	if (base.startsWith("."))
		return path.resolve(path.dirname(fromFile), base + ".d.ts");
	return path.join(nm, base + ".d.ts");
}

function loadIface(file) {
	if (ifaceCache.has(file))
		return ifaceCache.get(file);
	let res = null;
	if (fs.existsSync(file)) {
		const text = fs.readFileSync(file, "utf8");
		const m = text.match(/^export interface \w+(?: extends [\w, ]+)? \{$/m);
		if (m) {
			const imports = new Map();
			for (const im of text.matchAll(/^import \{ ([^}]+) \} from "([^"]+)";$/gm))
				for (const n of im[1].split(","))
					imports.set(n.trim(), resolveSpec(im[2], file));
			const start = m.index + m[0].length;
			const end = text.indexOf("\n}", start);
			const props = new Map();
			for (const p of text.slice(start, end).matchAll(/^ {4}"([^"]+)"\??: (.*)$/gm)) {
				const t = p[2].replace(/;$/, "");
				const r = t.match(/^(Array<)?(I[A-Za-z0-9]+)>?$/);
				props.set(p[1], r && imports.has(r[2]) ?
				    { array: !!r[1], file: imports.get(r[2]) } : null);
			}
			res = props;
		}
	}
	ifaceCache.set(file, res);
	return res;
}

function strictWalk(obj, file, where, errs) {
	if (obj === null || typeof obj !== "object" || Array.isArray(obj))
		return;
	const props = loadIface(file);
	if (!props)
		return; // an alias (Quantity, IntOrString...) or a free map
	for (const [k, v] of Object.entries(obj)) {
		if (!props.has(k)) {
			errs.push(`${where}.${k}: unknown field`);
			continue;
		}
		const ref = props.get(k);
		if (!ref)
			continue;
		if (ref.array && Array.isArray(v))
			v.forEach((x, i) => strictWalk(x, ref.file, `${where}.${k}[${i}]`, errs));
		else if (!ref.array)
			strictWalk(v, ref.file, `${where}.${k}`, errs);
	}
}

function strictErrors(o) {
	const errs = [];
	if (o.kind === "LeaderWorkerSet") {
		// lws-schema.mjs rejects unknown fields above the templates.
		const tplFile = path.join(nm, POD_TEMPLATE.replace(/\.js$/, ".d.ts"));
		for (const t of ["leaderTemplate", "workerTemplate"])
			strictWalk(o.spec?.leaderWorkerTemplate?.[t], tplFile,
			    `${id(o)}.spec.leaderWorkerTemplate.${t}`, errs);
		return errs;
	}
	const rel = MODELS[`${o.apiVersion}/${o.kind}`];
	if (rel)
		strictWalk(o, path.join(nm, rel.replace(/\.js$/, ".d.ts")), id(o), errs);
	return errs;
}

// ---------------------------------------------------------------- pods
// Every pod template in an object, with where it sits.
function podTemplates(o) {
	if (o.kind === "Deployment" || o.kind === "StatefulSet")
		return o.spec?.template ? [{ where: id(o), tpl: o.spec.template }] : [];
	if (o.kind === "LeaderWorkerSet") {
		const lwt = o.spec?.leaderWorkerTemplate ?? {};
		const out = [];
		for (const t of ["leaderTemplate", "workerTemplate"])
			if (lwt[t])
				out.push({ where: `${id(o)} ${t}`, tpl: lwt[t] });
		return out;
	}
	return [];
}

const NATIVE = new Set(["cpu", "memory", "ephemeral-storage"]);
const isExtended = (r) => !NATIVE.has(r) && !r.startsWith("hugepages-");

// What the API server rejects although the OpenAPI schema allows it.
function apiServerErrors(where, spec) {
	const errs = [];
	const inits = spec.initContainers ?? [];
	const mains = spec.containers ?? [];
	const vols = new Set((spec.volumes ?? []).map((v) => v.name));
	const claims = new Set((spec.resourceClaims ?? []).map((c) => c.name));
	const names = new Set();
	for (const [kind, list] of [["initContainers", inits], ["containers", mains]]) {
		for (const c of list) {
			const w = `${where} ${kind}[${c.name}]`;
			if (names.has(c.name))
				errs.push(`${w}: duplicate container name`);
			names.add(c.name);
			if (!c.image)
				errs.push(`${w}.image: Required value`);
			if (kind === "containers" && c.restartPolicy !== undefined)
				errs.push(`${w}.restartPolicy: only init containers may set it`);
			if (kind === "initContainers" && c.restartPolicy !== undefined &&
			    c.restartPolicy !== "Always")
				errs.push(`${w}.restartPolicy: must be Always, not ${c.restartPolicy}`);
			if (kind === "initContainers" && c.restartPolicy !== "Always")
				for (const p of ["startupProbe", "readinessProbe", "livenessProbe", "lifecycle"])
					if (c[p])
						errs.push(`${w}.${p}: only allowed on a sidecar (restartPolicy: Always)`);
			for (const m of c.volumeMounts ?? [])
				if (!vols.has(m.name))
					errs.push(`${w}.volumeMounts[${m.name}]: no volume of that name`);
			const req = c.resources?.requests ?? {};
			const lim = c.resources?.limits ?? {};
			let huge = false;
			for (const r of new Set([...Object.keys(req), ...Object.keys(lim)])) {
				if (r.startsWith("hugepages-"))
					huge = true;
				if ((r.startsWith("hugepages-") || isExtended(r)) &&
				    r in req && String(req[r]) !== String(lim[r]))
					errs.push(`${w}.resources: ${r} request must equal its limit`);
				if (isExtended(r) && !(r in lim))
					errs.push(`${w}.resources: ${r} needs a limit`);
			}
			if (huge && !("memory" in req) && !("cpu" in req) &&
			    !("memory" in lim) && !("cpu" in lim))
				errs.push(`${w}.resources: hugepages need a cpu or memory request`);
			for (const cl of c.resources?.claims ?? [])
				if (!claims.has(cl.name))
					errs.push(`${w}.resources.claims[${cl.name}]: not in the pod's resourceClaims`);
			const sc = c.securityContext ?? {};
			if (sc.privileged === true && sc.allowPrivilegeEscalation === false)
				errs.push(`${w}.securityContext: privileged needs allowPrivilegeEscalation not false`);
			const ports = new Set();
			for (const p of c.ports ?? []) {
				if (p.name && p.name.length > 15)
					errs.push(`${w}.ports[${p.name}]: name longer than 15`);
				if (p.name && ports.has(p.name))
					errs.push(`${w}.ports[${p.name}]: duplicate`);
				if (p.name)
					ports.add(p.name);
			}
			// $(VAR) only expands variables defined before it.
			const seen = new Set();
			for (const e of c.env ?? []) {
				for (const ref of String(e.value ?? "").matchAll(/\$\(([A-Za-z_][A-Za-z0-9_]*)\)/g))
					if (!seen.has(ref[1]))
						errs.push(`${w}.env[${e.name}]: $(${ref[1]}) is not defined before it`);
				seen.add(e.name);
			}
			for (const p of ["startupProbe", "readinessProbe", "livenessProbe"]) {
				const port = c[p]?.httpGet?.port ?? c[p]?.tcpSocket?.port;
				if (typeof port === "string" && !ports.has(port))
					errs.push(`${w}.${p}: port ${port} is not a port of this container`);
			}
		}
	}
	if (mains.length === 0)
		errs.push(`${where}: no containers`);
	return errs;
}

// ---------------------------------------------------------------- kvferry
const env = (c, n) => (c.env ?? []).find((e) => e.name === n);
const isSidecarImage = (c) => /(^|\/)kvferry(:|@|$)/.test(c.image ?? "");

function kvferryErrors(where, tpl, all) {
	const errs = [];
	const spec = tpl.spec ?? {};
	const inits = spec.initContainers ?? [];
	const mains = spec.containers ?? [];
	const side = inits.find((c) => c.name === "kvferry");
	if (!side) {
		if (mains.some((c) => c.name === "kvferry" || isSidecarImage(c)))
			errs.push(`${where}: kvferry runs as a plain container, not a native sidecar`);
		else
			errs.push(`${where}: no kvferry init container`);
		return errs;
	}
	if (spec.shareProcessNamespace !== true)
		errs.push(`${where}: shareProcessNamespace must be true (CUDA IPC between containers)`);
	if (side.restartPolicy !== "Always")
		errs.push(`${where}: the kvferry init container needs restartPolicy: Always`);
	for (const p of ["startupProbe", "readinessProbe", "livenessProbe"])
		if (!side[p])
			errs.push(`${where}: the kvferry sidecar has no ${p}`);
	if (side.readinessProbe?.httpGet?.path !== "/readyz")
		errs.push(`${where}: readinessProbe should GET /readyz`);
	if (side.livenessProbe?.httpGet?.path !== "/livez")
		errs.push(`${where}: livenessProbe should GET /livez`);
	// The engine socket directory: one emptyDir, mounted at /run/kvferry
	// in the sidecar and in every main container.
	const run = (spec.volumes ?? []).filter((v) => v.emptyDir !== undefined).map((v) => v.name);
	for (const c of [side, ...mains]) {
		const m = (c.volumeMounts ?? []).find((x) => x.mountPath === "/run/kvferry");
		if (!m)
			errs.push(`${where}: container ${c.name} does not mount /run/kvferry`);
		else if (!run.includes(m.name))
			errs.push(`${where}: /run/kvferry in ${c.name} is not an emptyDir`);
	}
	const names = new Set([side, ...mains].map((c) =>
	    (c.volumeMounts ?? []).find((x) => x.mountPath === "/run/kvferry")?.name));
	if (names.size > 1)
		errs.push(`${where}: /run/kvferry is not the same volume in every container`);
	// Configuration: a ConfigMap of the same set with the KVFERRY_* keys.
	const cmName = (side.envFrom ?? []).find((e) => e.configMapRef)?.configMapRef.name;
	const cm = all.find((o) => o.kind === "ConfigMap" && o.metadata?.name === cmName);
	if (!cm) {
		errs.push(`${where}: the sidecar's envFrom ConfigMap ${cmName} is not in the set`);
	} else {
		const d = cm.data ?? {};
		if (!String(d.KVFERRY_ENGINE_SOCKET ?? "").startsWith("/run/kvferry/"))
			errs.push(`${where}: KVFERRY_ENGINE_SOCKET is not under /run/kvferry`);
		if (d.KVFERRY_LOG_FORMAT !== "json")
			errs.push(`${where}: KVFERRY_LOG_FORMAT should be json`);
		for (const k of ["KVFERRY_CONTROL_URL", "KVFERRY_PEER_URL", "KVFERRY_METRICS_URL",
		    "KVFERRY_SECRET_FILE", "KVFERRY_LOG_LEVEL"])
			if (!(k in d))
				errs.push(`${where}: ConfigMap ${cmName} lacks ${k}`);
		const secretFile = d.KVFERRY_SECRET_FILE;
		if (secretFile && !(side.volumeMounts ?? []).some((m) =>
		    secretFile.startsWith(m.mountPath + "/") &&
		    (spec.volumes ?? []).find((v) => v.name === m.name)?.secret))
			errs.push(`${where}: KVFERRY_SECRET_FILE ${secretFile} is not on a Secret volume`);
	}
	for (const c of mains) {
		const s = env(c, "KVFERRY_ENGINE_SOCKET");
		if (!s)
			errs.push(`${where}: engine container ${c.name} lacks KVFERRY_ENGINE_SOCKET`);
	}
	const podIp = env(side, "POD_IP");
	if (podIp?.valueFrom?.fieldRef?.fieldPath !== "status.podIP")
		errs.push(`${where}: POD_IP must come from the downward API (status.podIP)`);
	if (env(side, "KVFERRY_FABRIC_ADDR")?.value !== "$(POD_IP)")
		errs.push(`${where}: KVFERRY_FABRIC_ADDR should be $(POD_IP)`);
	const ports = new Map((side.ports ?? []).map((p) => [p.name, p.containerPort]));
	if (ports.get("kvf-peer") !== 18515)
		errs.push(`${where}: the sidecar does not expose kvf-peer 18515`);
	if (ports.get("metrics") !== 9464)
		errs.push(`${where}: the sidecar does not expose metrics 9464`);
	// Images: the kustomize images transformer reached every container.
	for (const c of [side, ...mains])
		if (!String(c.image ?? "").includes("/"))
			errs.push(`${where}: container ${c.name} image ${c.image} is an unreplaced placeholder`);
	// The GPU: one DRA claim shared by both containers, or the device
	// plugin fallback with NVIDIA_VISIBLE_DEVICES on the sidecar.
	const rcs = spec.resourceClaims ?? [];
	if (rcs.length) {
		for (const rc of rcs) {
			const t = all.find((o) => o.kind === "ResourceClaimTemplate" &&
			    o.metadata?.name === rc.resourceClaimTemplateName);
			if (!t)
				errs.push(`${where}: ResourceClaimTemplate ${rc.resourceClaimTemplateName} is not in the set`);
			else if (!(t.spec?.spec?.devices?.requests ?? []).some((r) =>
			    r.exactly?.deviceClassName === "gpu.nvidia.com"))
				errs.push(`${where}: ${id(t)} does not request a gpu.nvidia.com device`);
		}
		for (const c of [side, ...mains])
			if (!(c.resources?.claims ?? []).length)
				errs.push(`${where}: container ${c.name} does not share the GPU claim`);
	} else {
		if (!mains.some((c) => c.resources?.limits?.["nvidia.com/gpu"]))
			errs.push(`${where}: no GPU: neither a ResourceClaim nor nvidia.com/gpu`);
		if (!env(side, "NVIDIA_VISIBLE_DEVICES"))
			errs.push(`${where}: without DRA the sidecar needs NVIDIA_VISIBLE_DEVICES`);
	}
	// EFA: when the sidecar asks for an EFA device it must get everything
	// the provider needs.
	const lim = side.resources?.limits ?? {};
	if ("vpc.amazonaws.com/efa" in lim) {
		if (!("hugepages-2Mi" in lim))
			errs.push(`${where}: EFA without hugepages-2Mi`);
		if (!side.resources?.requests?.memory)
			errs.push(`${where}: EFA sidecar without a memory request`);
		if (!(side.securityContext?.capabilities?.add ?? []).includes("IPC_LOCK") &&
		    side.securityContext?.privileged !== true)
			errs.push(`${where}: EFA sidecar needs IPC_LOCK (or privileged)`);
		if (env(side, "FI_PROVIDER")?.value !== "efa")
			errs.push(`${where}: EFA sidecar without FI_PROVIDER=efa`);
		if (env(side, "KVFERRY_PROVIDER")?.value !== "efa")
			errs.push(`${where}: EFA sidecar without KVFERRY_PROVIDER=efa`);
		if (!(side.volumeMounts ?? []).some((m) => m.mountPath === "/dev/hugepages"))
			errs.push(`${where}: EFA sidecar without /dev/hugepages`);
	}
	return errs;
}

function labelsMatch(sel, labels) {
	return Object.entries(sel ?? {}).every(([k, v]) => labels?.[k] === v);
}

// Deployment pods: peer discovery through the headless Service named by
// the pod's subdomain, and exactly one PodMonitor scraping each pod.
function wiringErrors(o, tpl, all) {
	const errs = [];
	const where = id(o);
	const labels = tpl.metadata?.labels ?? {};
	if (o.kind === "Deployment") {
		if (!labelsMatch(o.spec?.selector?.matchLabels, labels))
			errs.push(`${where}: selector does not match the template labels`);
		const sub = tpl.spec?.subdomain;
		const svc = all.find((x) => x.kind === "Service" && x.metadata?.name === sub);
		if (!svc) {
			errs.push(`${where}: subdomain ${sub} is not a Service of the set`);
		} else {
			if (svc.spec?.clusterIP !== "None")
				errs.push(`${id(svc)}: not headless (clusterIP: None)`);
			if (svc.spec?.publishNotReadyAddresses !== true)
				errs.push(`${id(svc)}: publishNotReadyAddresses must be true`);
			if (!svc.spec?.selector || !labelsMatch(svc.spec.selector, labels))
				errs.push(`${id(svc)}: selector does not select ${where}'s pods`);
			if (!(svc.spec?.ports ?? []).some((p) => p.port === 18515))
				errs.push(`${id(svc)}: no port 18515`);
		}
	}
	const mons = all.filter((x) => x.kind === "PodMonitor" &&
	    labelsMatch(x.spec?.selector?.matchLabels, labels));
	if (mons.length !== 1)
		errs.push(`${where}: ${mons.length} PodMonitors select its pods, want 1`);
	for (const m of mons)
		for (const ep of m.spec?.podMetricsEndpoints ?? [])
			if (!(tpl.spec?.initContainers ?? []).concat(tpl.spec?.containers ?? [])
			    .some((c) => (c.ports ?? []).some((p) => p.name === ep.port)))
				errs.push(`${id(m)}: port ${ep.port} is on no container`);
	return errs;
}

// ---------------------------------------------------------------- mutations
// Known-bad variants of a good render: validate.sh proves each is caught.
function firstPod(docs) {
	for (const o of docs)
		for (const p of podTemplates(o))
			return p.tpl.spec;
	throw new Error("no pod template to mutate");
}
const MUTATIONS = {
	"engine-no-image": (d) => { delete firstPod(d).containers[0].image; },
	"sidecar-no-restartpolicy": (d) => { delete firstPod(d).initContainers[0].restartPolicy; },
	"sidecar-restartpolicy-typo": (d) => {
		const c = firstPod(d).initContainers[0];
		c.restartpolicy = c.restartPolicy;
		delete c.restartPolicy;
	},
	"no-share-process-namespace": (d) => { firstPod(d).shareProcessNamespace = false; },
	"engine-no-socket-mount": (d) => {
		const c = firstPod(d).containers[0];
		c.volumeMounts = c.volumeMounts.filter((m) => m.mountPath !== "/run/kvferry");
	},
	"sidecar-as-container": (d) => {
		const s = firstPod(d);
		const side = s.initContainers.shift();
		delete side.restartPolicy;
		s.containers.push(side);
	},
	"port-not-a-number": (d) => { firstPod(d).initContainers[0].ports[0].containerPort = "peer"; },
	"hugepages-no-memory": (d) => {
		const r = firstPod(d).initContainers[0].resources;
		r.requests = { "hugepages-2Mi": "2Gi" };
		r.limits = { "hugepages-2Mi": "2Gi" };
	},
	"service-ready-only": (d) => {
		for (const o of d)
			if (o.kind === "Service")
				o.spec.publishNotReadyAddresses = false;
	},
	"unknown-kind": (d) => { d.push({ apiVersion: "example.com/v1", kind: "Widget", metadata: { name: "w" } }); },
};

// ---------------------------------------------------------------- commands
async function cmdValidate(name, file, mutation) {
	const docs = loadDocs(file);
	if (mutation) {
		if (!MUTATIONS[mutation])
			throw new Error(`unknown mutation ${mutation}; known: ${Object.keys(MUTATIONS).join(" ")}`);
		MUTATIONS[mutation](docs);
	}
	if (docs.length === 0) {
		report(`${name}: renders objects`, ["no objects"]);
		return;
	}
	const schema = [];
	const strict = [];
	for (const o of docs) {
		schema.push(...await schemaErrors(o));
		strict.push(...strictErrors(o));
	}
	report(`${name}: ${docs.length} objects valid against the Kubernetes and CRD schemas`, schema);
	report(`${name}: no unknown fields`, strict);
	const api = [];
	const kvf = [];
	const wiring = [];
	let pods = 0;
	for (const o of docs) {
		for (const { where, tpl } of podTemplates(o)) {
			pods++;
			api.push(...apiServerErrors(where, tpl.spec ?? {}));
			kvf.push(...kvferryErrors(where, tpl, docs));
			wiring.push(...wiringErrors(o, tpl, docs));
		}
	}
	if (pods === 0)
		kvf.push("no pod templates in the render");
	report(`${name}: ${pods} pod templates pass the API server's own checks`, api);
	report(`${name}: kvferry sidecar wiring (shared pid ns, /run/kvferry, native sidecar, probes, GPU, EFA)`, kvf);
	report(`${name}: peer discovery Service and PodMonitor select the pods`, wiring);
}

// The paths where two renders differ, as "a.b[2].c" strings.
function diffPaths(a, b, at, out) {
	if (Array.isArray(a) && Array.isArray(b)) {
		const n = Math.max(a.length, b.length);
		for (let i = 0; i < n; i++)
			diffPaths(a[i], b[i], `${at}[${i}]`, out);
	} else if (a && b && typeof a === "object" && typeof b === "object") {
		for (const k of new Set([...Object.keys(a), ...Object.keys(b)]))
			diffPaths(a[k], b[k], `${at}.${k}`, out);
	} else if (JSON.stringify(a) !== JSON.stringify(b)) {
		out.push(at);
	}
	return out;
}

async function cmdRoles(fa, fb, ra, rb) {
	const A = loadDocs(fa);
	const B = loadDocs(fb);
	const errs = [];
	const strip = (n) => n.replace(new RegExp(`^(${ra}|${rb})-`), "");
	const key = (o) => `${o.kind}/${strip(o.metadata.name).replace(/-[a-z0-9]{10}$/, "")}`;
	const mapB = new Map(B.map((o) => [key(o), o]));
	if (A.length !== B.length)
		errs.push(`${A.length} objects for ${ra}, ${B.length} for ${rb}`);
	// Where a role may differ: names, the role label and selectors, the
	// engine's --kv-role and the peer service it is pointed at.
	const allowed = [
		/^\.metadata\.name$/,
		/\.labels\.kvferry\/role$/,
		/\.(selector|matchLabels)(\.matchLabels)?\.kvferry\/role$/,
		/\.subdomain$/,
		/\.resourceClaimTemplateName$/,
		/\.configMapRef\.name$/,
		/\.configMapKeyRef\.name$/,
		/\.containers\[0\]\.args\[\d+\]$/,
		/\.containers\[0\]\.env\[\d+\]\.value$/,
	];
	const needed = { args: false, peer: false };
	for (const a of A) {
		const b = mapB.get(key(a));
		if (!b) {
			errs.push(`${key(a)} exists for ${ra} only`);
			continue;
		}
		for (const p of diffPaths(a, b, "", [])) {
			if (!allowed.some((re) => re.test(p))) {
				errs.push(`${key(a)}${p} differs between ${ra} and ${rb}`);
				continue;
			}
			const get = (o) => p.split(/\.|\[|\]/).filter(Boolean)
			    .reduce((x, s) => x?.[s], o);
			const va = String(get(a));
			const vb = String(get(b));
			if (/args/.test(p)) {
				if (va === `--kv-role=${ra}` && vb === `--kv-role=${rb}`)
					needed.args = true;
				else
					errs.push(`${key(a)}${p}: ${va} vs ${vb} is not a role change`);
			}
			if (/env\[\d+\]\.value$/.test(p)) {
				if (va.startsWith(`${rb}-`) && vb.startsWith(`${ra}-`))
					needed.peer = true;
				else
					errs.push(`${key(a)}${p}: ${va} vs ${vb} is not a peer-role change`);
			}
			if (/\.name$|subdomain|TemplateName/.test(p) &&
			    strip(va) !== strip(vb))
				errs.push(`${key(a)}${p}: ${va} vs ${vb} differ beyond the role prefix`);
			if (/kvferry\/role$/.test(p) && !(va === ra && vb === rb))
				errs.push(`${key(a)}${p}: role label ${va} vs ${vb}`);
		}
	}
	if (!needed.args)
		errs.push(`the engine's --kv-role does not differ`);
	if (!needed.peer)
		errs.push(`the engines are not pointed at each other's peer service`);
	report(`${ra} and ${rb} differ only in names, role labels, --kv-role and the peer service`, errs);
}

async function cmdLwsSync(fd, fl) {
	const dep = loadDocs(fd).find((o) => o.kind === "Deployment");
	const lws = loadDocs(fl).find((o) => o.kind === "LeaderWorkerSet");
	const errs = [];
	if (!dep || !lws) {
		report("LeaderWorkerSet pods carry the Deployment's sidecar", ["missing Deployment or LeaderWorkerSet"]);
		return;
	}
	const d = dep.spec.template.spec;
	const norm = (x) => JSON.stringify(x);
	for (const t of ["leaderTemplate", "workerTemplate"]) {
		const s = lws.spec.leaderWorkerTemplate[t].spec;
		for (const k of ["initContainers", "volumes", "securityContext", "shareProcessNamespace", "resourceClaims"])
			for (const p of diffPaths(d[k], s[k], `${t}.${k}`, []))
				errs.push(`${p} differs from the Deployment's`);
	}
	report("LeaderWorkerSet pods carry the same sidecar, volumes and claims as the Deployment", errs);
}

const [cmd, ...args] = process.argv.slice(2);
try {
	if (cmd === "validate" && args.length >= 2) {
		const i = args.indexOf("--mutate");
		await cmdValidate(args[0], args[1], i >= 0 ? args[i + 1] : null);
	} else if (cmd === "roles" && args.length === 4) {
		await cmdRoles(...args);
	} else if (cmd === "lws-sync" && args.length === 2) {
		await cmdLwsSync(...args);
	} else {
		console.error("usage: check.mjs validate NAME FILE [--mutate M] | " +
		    "roles A B ROLE_A ROLE_B | lws-sync DEPLOYMENT LWS");
		process.exit(2);
	}
} catch (e) {
	console.log(`not ok - ${cmd}: ${e.message}`);
	process.exit(1);
}
process.exit(failed ? 1 : 0);
