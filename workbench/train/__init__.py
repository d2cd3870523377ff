"""Trainers: contrastive pretraining (``pretrain``) and the end-to-end supervised baseline."""
