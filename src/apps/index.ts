/** Built-in apps by name, and user apps by module path. */
import { pathToFileURL } from 'node:url';
import { resolve } from 'node:path';
import { createEcho } from './echo.js';
import { createHello } from './hello.js';
import type { App } from './types.js';

export const BUILTIN_APPS = ['hello', 'echo', 'kv', 'static[:DIR]'] as const;

export function isBuiltinApp(spec: string): boolean {
  return spec === 'hello' || spec === 'echo' || spec === 'kv' || spec === 'static' || spec.startsWith('static:');
}

/**
 * `hello`, `echo`, `kv`, or a path to an ES module whose default export (or `app` export) is an App
 * or a function returning one. Loaded once per thread or process, so blocking engines can run it in each.
 */
export async function loadApp(spec: string): Promise<App> {
  switch (spec) {
    case 'hello':
      return createHello();
    case 'echo':
      return createEcho();
    case 'kv': {
      // One keyspace for all the engine's threads and processes, where it made one (kv-shm.ts).
      const { sharedRegionFromEnv } = await import('./kv-shm.js');
      return (await import('./kv.js')).createKv({ shared: sharedRegionFromEnv() });
    }
  }
  // `static` serves the current directory, `static:DIR` that one (DIR resolved against the cwd).
  if (spec === 'static' || spec.startsWith('static:')) return (await import('./static.js')).createStatic(spec.length > 7 ? spec.slice(7) : '.');
  let mod: Record<string, unknown>;
  try {
    mod = (await import(pathToFileURL(resolve(spec)).href)) as Record<string, unknown>;
  } catch (e) {
    throw new Error(`cannot load app ${JSON.stringify(spec)}: not a built-in (${BUILTIN_APPS.join(', ')}) and import failed: ${(e as Error).message}`);
  }
  let app = (mod.default ?? mod.app) as unknown;
  if (typeof app === 'function') app = await (app as () => unknown)();
  const a = app as Partial<App> | undefined;
  if (!a || (a.protocol !== 'http' && a.protocol !== 'resp' && a.protocol !== 'echo')) {
    throw new Error(`app module ${spec} must export (default or \`app\`) an object with protocol 'http' | 'resp' | 'echo' and a handle() function`);
  }
  if (a.protocol !== 'echo' && typeof (a as { handle?: unknown }).handle !== 'function') {
    throw new Error(`app module ${spec}: handle() is missing`);
  }
  if (typeof a.name !== 'string') (a as { name: string }).name = spec;
  return a as App;
}
