// wgsl_reflect's ES module build, imported by its path because the package's `main`
// (wgsl_reflect.node.js) is CommonJS in a "type": "module" package, which Node's ESM loader
// refuses ("exports is not defined"). It ships without a declaration beside it; its types are the
// package's own.
declare module 'wgsl_reflect/wgsl_reflect.module.js' {
  export * from 'wgsl_reflect';
}
