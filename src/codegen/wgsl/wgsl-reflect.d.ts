// wgsl_reflect's Node ESM entry (see DESIGN.md) ships without a declaration beside it; its types
// are the package's own.
declare module 'wgsl_reflect/wgsl_reflect.module.js' {
  export * from 'wgsl_reflect';
}
