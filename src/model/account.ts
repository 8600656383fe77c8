export const ROLES = ['admin', 'user', 'read_only'] as const;
export type Role = (typeof ROLES)[number];

export interface Account {
  id: number;
  name: string;
}

export interface User {
  id: number;
  username: string;
  role: Role;
  account_id: number;
  account_name: string;
  created_at: number;
}

export interface ApiKey {
  id: string;
  username: string;
  created_at: number;
}
