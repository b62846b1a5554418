import { version } from '../../package.json';

/** The CLIP Lens version, from package.json (inlined by the bundler). */
export const TOOL_VERSION: string = version;
