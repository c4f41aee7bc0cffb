// tests/k8s/lib/lws-schema.mjs - a JSON schema for LeaderWorkerSet
// (leaderworkerset.x-k8s.io/v1), written for these tests from the LWS
// API reference: no npm package models this CRD. It covers the fields
// above the pod templates and rejects unknown ones; check.mjs validates
// the two pod templates against the core PodTemplateSpec itself.
import Ajv from "ajv";

const intOrString = { anyOf: [{ type: "integer" }, { type: "string" }] };
const tpl = { type: "object" }; // checked by check.mjs

const schema = {
	type: "object",
	required: ["apiVersion", "kind", "metadata", "spec"],
	additionalProperties: false,
	properties: {
		apiVersion: { const: "leaderworkerset.x-k8s.io/v1" },
		kind: { const: "LeaderWorkerSet" },
		metadata: {
			type: "object",
			required: ["name"],
			properties: { name: { type: "string", minLength: 1 } },
		},
		spec: {
			type: "object",
			required: ["leaderWorkerTemplate"],
			additionalProperties: false,
			properties: {
				replicas: { type: "integer", minimum: 0 },
				startupPolicy: { enum: ["LeaderCreated", "LeaderReady"] },
				rolloutStrategy: {
					type: "object",
					additionalProperties: false,
					properties: {
						type: { enum: ["RollingUpdate"] },
						rollingUpdateConfiguration: {
							type: "object",
							additionalProperties: false,
							properties: {
								partition: { type: "integer", minimum: 0 },
								maxUnavailable: intOrString,
								maxSurge: intOrString,
							},
						},
					},
				},
				networkConfig: {
					type: "object",
					additionalProperties: false,
					properties: {
						subdomainPolicy: { enum: ["Shared", "UniquePerReplica"] },
					},
				},
				leaderWorkerTemplate: {
					type: "object",
					required: ["workerTemplate"],
					additionalProperties: false,
					properties: {
						size: { type: "integer", minimum: 1 },
						restartPolicy: {
							enum: ["RecreateGroupOnPodRestart", "None", "Default"],
						},
						leaderTemplate: tpl,
						workerTemplate: tpl,
						subGroupPolicy: {
							type: "object",
							properties: {
								subGroupSize: { type: "integer", minimum: 1 },
							},
						},
						volumeClaimTemplates: { type: "array" },
					},
				},
			},
		},
		status: { type: "object" },
	},
};

const validate = new Ajv({ allErrors: true, strict: true }).compile(schema);

// Error strings for one object, [] when it is valid.
export function lwsValidate(o) {
	if (validate(o))
		return [];
	return validate.errors.map((e) => `${e.instancePath || "/"}: ${e.message}` +
	    (e.params?.additionalProperty ? ` (${e.params.additionalProperty})` : ""));
}
