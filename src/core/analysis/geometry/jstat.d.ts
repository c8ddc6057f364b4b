// The parts of jStat (which ships no types) the geometry studies use.
declare module 'jstat' {
  const jStat: {
    gammaln(x: number): number
    studentt: { inv(p: number, dof: number): number; cdf(x: number, dof: number): number }
    normal: { cdf(x: number, mean: number, sd: number): number }
  }
  export default jStat
}
