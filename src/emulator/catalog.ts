import type { FakeModel, JsonSchema } from './models.js';

/** When each fake model's one version was "pushed": fixed, so answers are stable. */
const FAKE_VERSION_CREATED_AT = '2026-01-01T00:00:00.000000Z';
const COG_VERSION = '0.14.0';

export interface VersionInfo {
  readonly id: string;
  /** RFC 3339. */
  readonly createdAt: string;
  readonly inputSchema: JsonSchema;
  readonly outputSchema: JsonSchema;
}

/** A model the emulator knows: a fake model, or one created with `POST /v1/models`. */
export interface ModelInfo {
  readonly owner: string;
  readonly name: string;
  readonly description: string | null;
  readonly visibility: 'public' | 'private';
  /** Newest first; a created model has none until a training to it succeeds. */
  readonly versions: VersionInfo[];
}

export function fakeModelInfo(model: FakeModel): ModelInfo {
  const [owner = '', name = ''] = model.name.split('/');
  return {
    owner,
    name,
    description: model.description,
    visibility: 'public',
    versions: [
      {
        id: model.version,
        createdAt: FAKE_VERSION_CREATED_AT,
        inputSchema: model.inputSchema,
        outputSchema: model.outputSchema,
      },
    ],
  };
}

/** The version object of `GET /v1/models/{owner}/{name}/versions/{id}`. */
export function versionObject(version: VersionInfo): Record<string, unknown> {
  return {
    id: version.id,
    created_at: version.createdAt,
    cog_version: COG_VERSION,
    openapi_schema: {
      openapi: '3.0.2',
      info: { title: 'Cog', version: '0.1.0' },
      paths: {},
      components: { schemas: { Input: version.inputSchema, Output: version.outputSchema } },
    },
  };
}

/** The model object of `GET /v1/models/{owner}/{name}` and `GET /v1/models`. */
export function modelObject(model: ModelInfo, origin: string, runCount: number): Record<string, unknown> {
  const latest = model.versions[0];
  return {
    url: `${origin}/${model.owner}/${model.name}`,
    owner: model.owner,
    name: model.name,
    description: model.description,
    visibility: model.visibility,
    github_url: null,
    paper_url: null,
    license_url: null,
    run_count: runCount,
    cover_image_url: null,
    default_example: null,
    latest_version: latest === undefined ? null : versionObject(latest),
  };
}

/** `GET /v1/deployments/{owner}/{name}`: one release, running the fake model the name points at. */
export function deploymentObject(owner: string, name: string, model: FakeModel): Record<string, unknown> {
  return {
    owner,
    name,
    current_release: {
      number: 1,
      model: model.name,
      version: model.version,
      created_at: FAKE_VERSION_CREATED_AT,
      created_by: { type: 'organization', username: owner, name: owner, github_url: null },
      configuration: { hardware: 'cpu', min_instances: 0, max_instances: 1 },
    },
  };
}
