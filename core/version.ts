/** The tool version recorded in every weightspace.json (kept equal to package.json's by a test). */
export const VERSION = '0.1.0';
