import { openMemoryStorage } from '../src/store/index.ts';
import { storageContract } from './store-contract.ts';

storageContract('memory', async () => openMemoryStorage());
