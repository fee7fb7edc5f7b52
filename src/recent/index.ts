export { RecentMap, RecentSet } from './recent-map.js'
